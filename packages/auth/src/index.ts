export * from "./api-keys";
export * from "./errors";
export * from "./roles";
export * from "./tokens";
