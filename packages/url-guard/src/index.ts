export * from "./url-fetch";
export * from "./post";
