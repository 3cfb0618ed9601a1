// The control center's first call, from a browser: sign in on the Firebase Auth emulator (its REST API, as the Firebase
// JS SDK does), then GET admin_dashboard with the ID token and show every figure.
//
// ?api=<functions base URL> (default: this page's origin) &auth=<Auth emulator URL> (default: port 9099 on this host).
const params = new URLSearchParams(location.search);
const api = (params.get("api") || location.origin).replace(/\/+$/, "");
const auth = (params.get("auth") || `${location.protocol}//${location.hostname}:9099`).replace(/\/+$/, "");

const status = document.getElementById("status");
document.getElementById("api-url").textContent = api;
document.getElementById("auth-url").textContent = auth;
document.getElementById("page-origin").textContent = location.origin;

function show(state, text) {
  status.dataset.state = state;
  status.textContent = text;
}

async function signIn(email, password) {
  const response = await fetch(`${auth}/identitytoolkit.googleapis.com/v1/accounts:signInWithPassword?key=local`, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ email, password, returnSecureToken: true }),
  });
  const body = await response.json();
  if (!response.ok) {
    throw new Error(`sign-in refused: ${body.error?.message ?? response.status}`);
  }
  return body.idToken;
}

async function dashboard(idToken) {
  const response = await fetch(`${api}/admin_dashboard`, { headers: { Authorization: `Bearer ${idToken}` } });
  const body = await response.json();
  if (!response.ok) {
    throw new Error(`admin_dashboard answered ${response.status}: ${body.error?.code ?? "?"}`);
  }
  return body;
}

/** Every leaf of the reply by its dotted name: {"mitras.online": 2, ...}. */
function leaves(value, prefix = "", into = {}) {
  for (const [key, item] of Object.entries(value)) {
    const name = prefix ? `${prefix}.${key}` : key;
    if (item !== null && typeof item === "object" && !Array.isArray(item)) {
      leaves(item, name, into);
    } else {
      into[name] = item;
    }
  }
  return into;
}

function label(name) {
  return name.replaceAll("_", " ").replaceAll(".", " · ");
}

/** Renders every figure of the reply in a table; answers how many. */
function render(reply) {
  const table = document.createElement("table");
  table.createCaption().textContent = `${reply.day} (as of ${new Date(reply.as_of).toLocaleTimeString()})`;
  for (const [name, value] of Object.entries(leaves(reply))) {
    if (name === "as_of" || name === "day") continue;
    const row = table.insertRow();
    const head = document.createElement("th");
    head.textContent = label(name);
    row.append(head);
    const cell = row.insertCell();
    cell.dataset.figure = name;
    cell.dataset.value = JSON.stringify(value);
    cell.textContent = value === null ? "—" : String(value);
  }
  document.getElementById("figures").replaceChildren(table);
  return table.rows.length;
}

document.getElementById("sign-in-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  let step = "sign-in";
  show("working", "Signing in…");
  try {
    const idToken = await signIn(document.getElementById("email").value, document.getElementById("password").value);
    step = "admin_dashboard";
    show("working", "Signed in; asking admin_dashboard…");
    const reply = await dashboard(idToken);
    const figures = render(reply);
    show("done", `admin_dashboard from ${api}: ${figures} figures.`);
  } catch (error) {
    // A reply the browser withholds (CORS) shows here as "TypeError: Failed to fetch".
    document.getElementById("figures").replaceChildren();
    show("failed", `${step}: ${error.name}: ${error.message}`);
  }
});
