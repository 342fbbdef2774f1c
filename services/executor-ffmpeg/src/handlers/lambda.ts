import { InvokeCommand, type LambdaClient } from "@aws-sdk/client-lambda";
import { LambdaMediaResult, type AudioMixerEvent, type VideoComposerEvent, type VideoMergerEvent } from "@vp/contracts";
import { WorkInputError } from "./errors";

export type LambdaFunction = "video-merger" | "audio-mixer" | "video-composer";

export interface LambdaEvents {
  "video-merger": VideoMergerEvent;
  "audio-mixer": AudioMixerEvent;
  "video-composer": VideoComposerEvent;
}

export interface LambdaInvoker {
  invoke<F extends LambdaFunction>(fn: F, event: LambdaEvents[F], options?: { signal?: AbortSignal }): Promise<LambdaMediaResult>;
}

export interface LambdaInvokerOptions {
  client: LambdaClient;
  /** Deployed names (or ARNs) of the functions; default their own names. */
  functionNames?: Partial<Record<LambdaFunction, string>>;
}

/** AWS-side errors that say the function cannot be invoked as configured: no retry changes that. */
const CONFIGURATION_ERRORS = new Set([
  "ResourceNotFoundException",
  "InvalidParameterValueException",
  "InvalidRequestContentException",
  "RequestTooLargeException",
  "AccessDeniedException",
]);

/** errorTypes the functions throw for an event or inputs that can never succeed (lambdas/shared/runtime.ts). */
const INPUT_ERROR_TYPES = new Set(["LambdaEventError", "LambdaInputError"]);

/**
 * A function error that another invocation may not repeat: Lambda's own timeout (Sandbox.Timedout), a runtime killed
 * for memory (Runtime.OutOfMemory, Runtime.ExitError), an S3 or network error inside the function. Not a
 * WorkInputError: the job is retried, and after LAMBDA_ATTEMPTS_BEFORE_LOCAL attempts the node may run locally.
 */
export class LambdaFunctionError extends Error {
  readonly errorType: string;
  constructor(functionName: string, errorType: string, message: string) {
    super(`Lambda ${functionName} failed (${errorType}): ${message}`);
    this.name = "LambdaFunctionError";
    this.errorType = errorType;
  }
}

function payloadText(payload: Uint8Array | undefined): string {
  return payload ? Buffer.from(payload).toString("utf8") : "";
}

function parseJson(text: string): unknown {
  try {
    return text ? JSON.parse(text) : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The Lambda invoker: a RequestResponse invoke. Failures that no retry can fix become failed nodes with the reason:
 * a status other than 200 ("Lambda invocation failed: <FunctionError>"), a function error whose errorType says the
 * event or inputs are wrong, an `errorMessage`/`error` the function answered with ("Lambda error: <message>"), a
 * payload that is not the contract's. Other function errors (timeout, memory, S3 inside the function) are
 * LambdaFunctionError, and throttling, AWS 5xx and network errors are thrown as they are: the job is retried.
 */
export function createLambdaInvoker(options: LambdaInvokerOptions): LambdaInvoker {
  const { client } = options;
  return {
    async invoke(fn, event, { signal } = {}) {
      const functionName = options.functionNames?.[fn] ?? fn;
      let response;
      try {
        response = await client.send(
          new InvokeCommand({ FunctionName: functionName, InvocationType: "RequestResponse", Payload: Buffer.from(JSON.stringify(event)) }),
          { abortSignal: signal },
        );
      } catch (error) {
        const name = (error as Error).name;
        if (CONFIGURATION_ERRORS.has(name)) {
          throw new WorkInputError(`Lambda invocation failed: ${name}: ${(error as Error).message}`, { cause: error });
        }
        throw error;
      }
      const text = payloadText(response.Payload);
      const body = parseJson(text) as Record<string, unknown> | undefined;
      if (response.StatusCode !== 200) {
        throw new WorkInputError(`Lambda invocation failed: ${response.FunctionError ?? `status ${response.StatusCode}`}`);
      }
      const message = body && typeof body === "object" ? (body.errorMessage ?? body.error) : undefined;
      const reason = typeof message === "string" ? message : (response.FunctionError ?? "unknown function error");
      if (response.FunctionError) {
        const errorType = typeof body?.errorType === "string" ? body.errorType : "Unhandled";
        if (INPUT_ERROR_TYPES.has(errorType)) throw new WorkInputError(`Lambda error: ${reason}`);
        throw new LambdaFunctionError(functionName, errorType, reason);
      }
      if (message !== undefined) throw new WorkInputError(`Lambda error: ${reason}`);
      const result = LambdaMediaResult.safeParse(body);
      if (!result.success) {
        throw new WorkInputError(`Lambda ${functionName} returned a payload that is not a media result: ${text.slice(0, 200)}`);
      }
      return result.data;
    },
  };
}
