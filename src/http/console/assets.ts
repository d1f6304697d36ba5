/**
 * The console's browser side, bundled on first request: `app/main.ts` and what it imports,
 * bundled by esbuild into one script (nothing is fetched from elsewhere at run time), and
 * `app/styles.css`. The bundle is built once per process and kept in memory; nothing generated
 * is committed, so a clean clone serves the console with `npm start`.
 */
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";

/** The bundled files. */
export interface Bundle {
  readonly js: string;
  readonly css: string;
}

const APP_DIR = fileURLToPath(new URL("./app/", import.meta.url));

/** The page that loads the bundle (hash routes: every page is `/`). */
export const INDEX_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Rill console</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="/console/app.css">
<script defer src="/console/app.js"></script>
</head>
<body><div id="app"></div></body>
</html>
`;

/** Builds the bundle once; later calls answer the same promise (a failed build is tried again). */
export class ConsoleAssets {
  private building: Promise<Bundle> | null = null;

  get(): Promise<Bundle> {
    if (!this.building) {
      this.building = build();
      this.building.catch(() => (this.building = null));
    }
    return this.building;
  }
}

async function build(): Promise<Bundle> {
  const esbuild = await import("esbuild");
  const out = await esbuild.build({
    entryPoints: [`${APP_DIR}main.ts`],
    bundle: true,
    write: false,
    format: "iife",
    platform: "browser",
    target: ["es2020"],
    minify: true,
    legalComments: "none",
    logLevel: "silent",
  });
  const js = out.outputFiles[0]?.text;
  if (js === undefined) throw new Error("esbuild produced no output for the console");
  return { js, css: readFileSync(`${APP_DIR}styles.css`, "utf8") };
}
