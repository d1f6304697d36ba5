/// <reference lib="dom" />
/// <reference lib="dom.iterable" />
/**
 * The console's entry: the header and navigation, the hash router (`#/`, `#/topics`,
 * `#/topics/{name}`, `#/groups`, `#/groups/{id}`, `#/traffic`, `#/login`), the login page shown
 * when the API answers 401, and the refresh of the live pages (overview, group, traffic).
 */
import { api, auth, clearLogin, saveLogin } from "./api.ts";
import { h, mount } from "./dom.ts";
import { errorBox, groupPage, groupsPage, overviewPage, topicPage, topicsPage, trafficPage } from "./pages.ts";

/** How often live pages are fetched again. */
const LIVE_REFRESH_MS = 5000;

const root = document.getElementById("app")!;
const main = h("main", { id: "main" });
const who = h("span", { class: "who", "data-testid": "principal" });
let timer: number | undefined;
let needsLogin = false;

const nav = h(
  "nav",
  {},
  h("a", { href: "#/", class: "brand" }, "Rill"),
  h("a", { href: "#/" }, "Overview"),
  h("a", { href: "#/topics" }, "Topics"),
  h("a", { href: "#/groups" }, "Groups"),
  h("a", { href: "#/traffic" }, "Traffic"),
  who,
);
mount(root, h("header", {}, nav), main);

auth.onUnauthenticated = () => {
  needsLogin = true;
  if (location.hash !== "#/login") location.hash = "#/login";
};

function loginPage(): HTMLElement {
  const user = h("input", { name: "user", autocomplete: "username", required: true, "data-testid": "login-user" });
  const password = h("input", {
    name: "password",
    type: "password",
    autocomplete: "current-password",
    required: true,
    "data-testid": "login-password",
  });
  const status = h("p", { class: "status", role: "status" });
  return h(
    "div",
    { class: "login" },
    h("h1", {}, "Sign in"),
    h("p", { class: "muted" }, "This broker requires authentication: use a SCRAM user of the cluster."),
    h(
      "form",
      {
        "data-testid": "login-form",
        onsubmit: async (e: Event) => {
          e.preventDefault();
          saveLogin(user.value, password.value);
          try {
            const s = await session();
            if (!s.authenticated) {
              clearLogin();
              mount(status, errorBox(new Error(`Sign-in refused: ${s.reason ?? "unknown reason"}`)));
              return;
            }
            needsLogin = false;
            location.hash = "#/";
          } catch (err) {
            clearLogin();
            mount(status, errorBox(err));
          }
        },
      },
      h("label", {}, "User", user),
      h("label", {}, "Password", password),
      h("button", { type: "submit", "data-testid": "login-submit" }, "Sign in"),
      status,
    ),
  );
}

/** The page of `hash`, and whether it refreshes itself. */
function pageOf(hash: string): { load: () => Promise<HTMLElement>; live: boolean } {
  const parts = hash.replace(/^#\/?/, "").split("/").map(decodeURIComponent);
  const refresh = (): void => void render();
  switch (parts[0]) {
    case "":
    case undefined:
      return { load: overviewPage, live: true };
    case "topics":
      return parts[1] ? { load: () => topicPage(parts[1]!, refresh), live: false } : { load: () => topicsPage(refresh), live: false };
    case "groups":
      return parts[1] ? { load: () => groupPage(parts[1]!), live: true } : { load: groupsPage, live: true };
    case "traffic":
      return { load: trafficPage, live: true };
    default:
      return { load: async () => h("p", {}, `No page at ${hash}.`), live: false };
  }
}

let rendering = 0;

async function render(): Promise<void> {
  const mine = ++rendering;
  window.clearTimeout(timer);
  if (location.hash === "#/login") {
    mount(main, loginPage());
    return;
  }
  const page = pageOf(location.hash);
  try {
    const el = await page.load();
    if (mine !== rendering) return;
    // Keep the reader's place and open sections when a live page refreshes.
    const open = [...main.querySelectorAll("details[open] > summary")].map((s) => s.textContent);
    mount(main, el);
    for (const s of main.querySelectorAll("details > summary"))
      if (open.includes(s.textContent)) (s.parentElement as HTMLDetailsElement).open = true;
    main.dataset.loaded = location.hash || "#/";
  } catch (e) {
    if (mine !== rendering || needsLogin) return;
    mount(main, errorBox(e));
  }
  if (page.live) timer = window.setTimeout(() => void render(), LIVE_REFRESH_MS);
}

/** The session answer: whether the caller is signed in (answered without credentials too). */
interface Session {
  authenticated: boolean;
  principal: string | null;
  authRequired: boolean;
  reason?: string;
}

async function session(): Promise<Session> {
  const s = await api<Session>("GET", "session");
  const signOut = h("a", { href: "#/login", "data-testid": "sign-out", onclick: () => clearLogin() }, "sign out");
  if (s.authRequired && s.principal) mount(who, `${s.principal} · `, signOut);
  else mount(who);
  return s;
}

window.addEventListener("hashchange", () => void render());
session()
  .then((s) => {
    if (!s.authenticated) {
      needsLogin = true;
      if (location.hash !== "#/login") {
        location.hash = "#/login"; // renders through hashchange
        return;
      }
    }
    void render();
  })
  .catch((e) => mount(main, errorBox(e)));
