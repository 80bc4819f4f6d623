import react from "@vitejs/plugin-react";
import { defineConfig } from "vitest/config";

// Django serves the build from /static/ (whitenoise: hashed names, compressed, cached for a year).
export default defineConfig({
  base: "/static/",
  plugins: [react()],
  build: { outDir: "dist", emptyOutDir: true, manifest: false },
  server: { proxy: { "/api": "http://127.0.0.1:8000" } },
  test: {
    environment: "jsdom",
    setupFiles: ["src/test-setup.ts"],
    restoreMocks: true,
    unstubGlobals: true,
    // A deadline, not a speed test: jsdom user-event tests take 5 s on a loaded 2-core machine.
    testTimeout: 30000,
  },
});
