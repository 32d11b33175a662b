import { cpSync, rmSync } from "node:fs";
import { type BuildOptions, type Plugin, build } from "esbuild";

/**
 * The function app's code as CommonJS bundles: a cold start loads one file instead of resolving hundreds
 * of modules, and V8 compiles only what a cold start needs. `@azure/functions-core` is provided by the
 * Node.js worker at run time.
 */

/** SDKs the app loads only on first use (Key Vault and managed identity in Azure, sign-in, the queue). */
const lazyPackages = ["@azure/identity", "@azure/msal-node", "@azure/keyvault-secrets", "@azure/storage-queue"];
const vendorFile = (name: string) => `vendor/${name.replace(/^@azure\//, "")}.js`;

/** The main bundle requires the lazy SDKs from dist/vendor/*.js, read only when first required. */
const lazyVendors: Plugin = {
  name: "lazy-vendors",
  setup(build) {
    build.onResolve({ filter: new RegExp(`^(${lazyPackages.map((name) => name.replace("/", "\\/")).join("|")})$`) }, (args) => ({
      path: `./${vendorFile(args.path)}`,
      external: true,
    }));
  },
};

/** zod's locale files have no side effects; saying so lets the unused ones go (they are most of zod). */
const zodLocalesSideEffectFree: Plugin = {
  name: "zod-locales",
  setup(build) {
    build.onResolve({ filter: /^\./ }, async (args) => {
      const intoLocales = /locales/.test(args.path) || /[\\/]zod[\\/].*[\\/]locales[\\/]/.test(args.importer);
      if (args.pluginData?.resolving || !/node_modules[\\/]zod[\\/]/.test(args.importer) || !intoLocales) return undefined;
      const resolved = await build.resolve(args.path, {
        kind: args.kind,
        resolveDir: args.resolveDir,
        importer: args.importer,
        pluginData: { resolving: true },
      });
      return { ...resolved, sideEffects: false };
    });
  },
};

const common: BuildOptions & { metafile: true } = {
  bundle: true,
  platform: "node",
  target: "node20",
  format: "cjs",
  minify: true,
  sourcemap: "linked",
  legalComments: "linked",
  external: ["@azure/functions-core"],
  // Some dependencies ship ESM that calls createRequire(import.meta.url); give CommonJS a real value.
  banner: { js: "const __importMetaUrl = require('url').pathToFileURL(__filename).href;" },
  define: { "import.meta.url": "__importMetaUrl" },
  metafile: true,
  logLevel: "warning",
};

async function main(): Promise<void> {
  rmSync("dist/vendor", { recursive: true, force: true });
  // The setup page's static files, served by the setup-page function from next to the bundle.
  rmSync("dist/setup-page", { recursive: true, force: true });
  cpSync("src/setup-page", "dist/setup-page", { recursive: true });
  const results = await Promise.all([
    build({ ...common, entryPoints: ["src/functions/index.ts"], outfile: "dist/main.js", plugins: [lazyVendors, zodLocalesSideEffectFree] }),
    ...lazyPackages.map((name) =>
      build({
        ...common,
        stdin: { contents: `module.exports = require(${JSON.stringify(name)});`, resolveDir: process.cwd(), loader: "js" },
        outfile: `dist/${vendorFile(name)}`,
      }),
    ),
  ]);
  for (const result of results) {
    for (const [file, output] of Object.entries(result.metafile.outputs)) {
      if (file.endsWith(".js")) console.log(`${file}: ${(output.bytes / 1024).toFixed(0)} KiB`);
    }
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
