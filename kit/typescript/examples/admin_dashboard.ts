// Sign an admin in on the Firebase Auth emulator and read the dashboard through the generated client.
//
//   node dist/examples/admin_dashboard.js      (after `tsc -p clients/typescript`)
//
// HALO_FUNCTIONS_URL (default http://127.0.0.1:5001), HALO_AUTH_URL (default http://127.0.0.1:9099),
// HALO_ADMIN_EMAIL / HALO_ADMIN_PASSWORD (default: the local stack's seeded admin). Prints the dashboard as JSON.
import { createHaloClient, type ErrorEnvelope, type Schemas } from "../index.js";

const functionsUrl = process.env.HALO_FUNCTIONS_URL ?? "http://127.0.0.1:5001";
const authUrl = process.env.HALO_AUTH_URL ?? "http://127.0.0.1:9099";
const email = process.env.HALO_ADMIN_EMAIL ?? "admin@halo.local";
const password = process.env.HALO_ADMIN_PASSWORD ?? "halo-dev-admin";

interface SignInReply {
  idToken: string;
  localId: string;
}

/** Firebase Auth's REST sign-in (what the Firebase JS SDK's signInWithEmailAndPassword calls); the emulator takes any
 * API key. */
async function signIn(): Promise<SignInReply> {
  const response = await fetch(`${authUrl}/identitytoolkit.googleapis.com/v1/accounts:signInWithPassword?key=local`, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ email, password, returnSecureToken: true }),
  });
  if (!response.ok) {
    throw new Error(`sign-in refused: ${response.status} ${await response.text()}`);
  }
  return (await response.json()) as SignInReply;
}

function describe(error: ErrorEnvelope): string {
  return `${error.error.code}: ${error.error.message}`;
}

const session = await signIn();
const halo = createHaloClient({ baseUrl: functionsUrl, idToken: () => session.idToken });
const { data, error, response } = await halo.GET("/admin_dashboard");
if (data === undefined) {
  const reason = error === undefined ? "no body" : describe(error);
  console.error(`admin_dashboard answered ${response.status}: ${reason}`);
  process.exit(1);
}
const dashboard: Schemas["Dashboard"] = data;
const online: number = dashboard.mitras.online;
console.error(`${dashboard.day}: ${online} of ${dashboard.mitras.active} mitras online`);
console.log(JSON.stringify(dashboard));
