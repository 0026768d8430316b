// Builds the inspector's page into @toolbridge/server's dist/inspector-ui, which the host and
// `toolbridge inspect` serve; relative paths (base "./") so it works under any URL prefix.
import { fileURLToPath } from "node:url";
import react from "@vitejs/plugin-react";
import { defineConfig } from "vite";

export default defineConfig({
  root: fileURLToPath(new URL(".", import.meta.url)),
  base: "./",
  plugins: [react()],
  build: {
    outDir: fileURLToPath(new URL("../server/dist/inspector-ui", import.meta.url)),
    emptyOutDir: true,
    // The tool form (RJSF and Ajv) is its own chunk, loaded when a tool is opened.
    chunkSizeWarningLimit: 900,
  },
});
