export * from "./ids";
export * from "./node-types";
export * from "./inputs";
export * from "./config";
export * from "./state";
export * from "./messages";
export * from "./topology";
export * from "./document";
