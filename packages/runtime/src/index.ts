export * from "./lifecycle";
export * from "./work";
export * from "./job-runner";
export * from "./executor";
export * from "./env";
export * from "./unavailable";
export { untilStored } from "./until-stored";
export * from "./service-bus";
export * from "./job-settings";
