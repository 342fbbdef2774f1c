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
 * The Lambda invoker: a RequestResponse invoke whose failures become failed nodes with the reason:
 * a status other than 200 ("Lambda invocation failed: <FunctionError>"), a function error or an
 * `errorMessage`/`error` in the payload ("Lambda error: <message>"), a payload that is not the contract's.
 * Throttling, AWS 5xx and network errors are thrown as they are, so the job is retried with backoff.
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
      if (response.FunctionError || message !== undefined) {
        throw new WorkInputError(`Lambda error: ${typeof message === "string" ? message : (response.FunctionError ?? "unknown function error")}`);
      }
      const result = LambdaMediaResult.safeParse(body);
      if (!result.success) {
        throw new WorkInputError(`Lambda ${functionName} returned a payload that is not a media result: ${text.slice(0, 200)}`);
      }
      return result.data;
    },
  };
}
