import { defineConfig } from "vite";

// The gateway serves dist/ at "/" (src/web). `npm run dev` proxies the API to
// a local chatd so the page can be developed with hot reload.
export default defineConfig({
  base: "/",
  build: {
    outDir: "dist",
    emptyOutDir: true,
    sourcemap: true,
    // One module chunk; no inline scripts, so the gateway's CSP can forbid them.
    modulePreload: { polyfill: false },
    assetsInlineLimit: 0,
  },
  server: {
    proxy: {
      "/v1": process.env.CHATD_GATEWAY ?? "http://127.0.0.1:8080",
    },
  },
});
