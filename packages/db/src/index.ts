export * from "./errors";
export * from "./connection";
export * from "./rows";
export * from "./reader";
export * from "./editor";
export * from "./state";
export * from "./migrate";
export * from "./runs";
