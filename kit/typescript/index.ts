// The Halo Bestie HTTP API for TypeScript (the control center): `make clients` generates schema.ts from openapi.json
// with openapi-typescript and puts this file beside it. Every call is typed by path, method, body and reply:
//
//   const halo = createHaloClient({ baseUrl: "http://127.0.0.1:5001", idToken: () => user.getIdToken() });
//   const { data, error } = await halo.GET("/admin_dashboard");
//
// `data` is the 200 reply; `error` is the contract's envelope `{ error: { code, message, ... } }` otherwise.
import createClient, { type Client, type Middleware } from "openapi-fetch";
import type { components, paths } from "./schema.js";

export type { components, operations, paths } from "./schema.js";

/** Every request and reply body of the API by its schema name: `Schemas["Dashboard"]`. */
export type Schemas = components["schemas"];
/** What a function answers with when it refuses: `{ error: { code, message } }` (400 adds `fields`). */
export type ErrorEnvelope = Schemas["ErrorEnvelope"];
export type HaloClient = Client<paths>;

export interface HaloClientOptions {
  /** Where the functions are served: `http://127.0.0.1:5001` on `make dev`; in production the control center's
   * origin (docs/control-center.md). */
  baseUrl: string;
  /** The signed-in user's Firebase ID token, asked for before every call (Firebase's `getIdToken()` refreshes it
   * when it is about to expire). Nothing is sent when it gives nothing. */
  idToken?: () => string | undefined | Promise<string | undefined>;
  /** Another fetch (tests, server-side rendering). */
  fetch?: typeof globalThis.fetch;
}

export function createHaloClient(options: HaloClientOptions): HaloClient {
  const client = createClient<paths>({ baseUrl: options.baseUrl.replace(/\/+$/, ""), fetch: options.fetch });
  const idToken = options.idToken;
  if (idToken) {
    const bearer: Middleware = {
      async onRequest({ request }) {
        const token = await idToken();
        if (token) {
          request.headers.set("Authorization", `Bearer ${token}`);
        }
        return request;
      },
    };
    client.use(bearer);
  }
  return client;
}

/** A POST that may be retried safely carries the same `Idempotency-Key` each time (e.g. `billing_checkout`). */
export function idempotencyKey(): string {
  return globalThis.crypto.randomUUID();
}
