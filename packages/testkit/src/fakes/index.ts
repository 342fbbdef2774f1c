export { FakeProvider, type Fault, type FakeCall, type FakeEndpoint, type FakeJob, type FakeOptions } from "./server";
export { FakeHeygen } from "./heygen";
export { FakeElevenlabs } from "./elevenlabs";
export { FakeVeo } from "./veo";
export { FakeRunway, FAKE_RUNWAY_VERSION } from "./runway";
export { makeFakeVideo, makeFakeSpeech } from "./media";

import { FakeElevenlabs } from "./elevenlabs";
import { FakeHeygen } from "./heygen";
import { FakeRunway } from "./runway";
import { FakeVeo } from "./veo";

export interface FakeProviders {
  heygen: FakeHeygen;
  elevenlabs: FakeElevenlabs;
  veo: FakeVeo;
  runway: FakeRunway;
  /** executor-ai environment pointing every provider at its fake (keys and base URLs). */
  env: Record<string, string>;
  reset(): void;
  close(): Promise<void>;
}

/** The four fake providers on 127.0.0.1, each with its own random key. */
export async function startFakeProviders(options: { pollsUntilDone?: number } = {}): Promise<FakeProviders> {
  const key = (name: string) => `test-${name}-key-${Math.random().toString(36).slice(2, 10)}`;
  const heygen = await new FakeHeygen({ apiKey: key("heygen"), ...options }).start();
  const elevenlabs = await new FakeElevenlabs({ apiKey: key("elevenlabs"), ...options }).start();
  const veo = await new FakeVeo({ apiKey: key("veo"), ...options }).start();
  const runway = await new FakeRunway({ apiKey: key("runway"), ...options }).start();
  const all = [heygen, elevenlabs, veo, runway];
  return {
    heygen,
    elevenlabs,
    veo,
    runway,
    env: {
      HEYGEN_API_KEY: heygen.apiKey,
      HEYGEN_BASE_URL: heygen.url,
      ELEVENLABS_API_KEY: elevenlabs.apiKey,
      ELEVENLABS_BASE_URL: elevenlabs.url,
      GEMINI_API_KEY: veo.apiKey,
      VEO_BASE_URL: veo.url,
      RUNWAY_API_KEY: runway.apiKey,
      RUNWAY_BASE_URL: runway.url,
    },
    reset: () => {
      for (const f of all) f.reset();
    },
    close: async () => {
      await Promise.all(all.map((f) => f.close()));
    },
  };
}
