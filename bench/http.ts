/** A JSON call on the stack's API with a bearer token; a non-2xx answer throws with its status and body. */
export function apiCaller(baseUrl: string, token: string) {
  const root = `${baseUrl}/v1/video_production`;
  return async (method: string, path: string, body?: unknown) => {
    const res = await fetch(`${root}${path}`, {
      method,
      headers: { authorization: `Bearer ${token}`, ...(body ? { "content-type": "application/json" } : {}) },
      body: body ? JSON.stringify(body) : undefined,
    });
    if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${(await res.text()).slice(0, 500)}`);
    return res.json() as Promise<any>;
  };
}
