import { defineConfig } from 'vite';
import react from '@vitejs/plugin-react';

// The app is served by `freshet serve` from the embedded build (ui.Handler): files
// under /static/ carry a content hash and are cached for a year; every other path
// without an extension is a client-side route answered with index.html.
// `npm run dev` serves it with hot reload and sends the API to a local
// `freshet serve` (FRESHET_API, default http://127.0.0.1:3000).
const api = process.env.FRESHET_API ?? 'http://127.0.0.1:3000';

export default defineConfig({
  plugins: [react()],
  build: {
    outDir: 'dist',
    assetsDir: 'static',
    emptyOutDir: true,
    sourcemap: false,
    chunkSizeWarningLimit: 2000,
  },
  worker: { format: 'es' },
  server: {
    proxy: {
      '/graphql': { target: api, ws: true, changeOrigin: false },
      '/readyz': api,
    },
  },
});
