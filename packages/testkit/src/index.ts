export * from "./db";
export * from "./nats";
export * from "./clips";
export * from "./sse";
export * from "./processes";
export * from "./containers";
export * from "./fakes";
export * from "./otlp";
