export type { WorkContext, WorkFunction, WorkResult } from "@vp/runtime";
