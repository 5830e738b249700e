// Vite builds the three pages into dist/ with base /app/ (the proxy serves dist/ there, embedded
// at compile time). Everything is bundled: no request leaves the proxy's origin.
import { resolve } from 'node:path';
import { defineConfig } from 'vite';

export default defineConfig({
  base: '/app/',
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    target: 'es2022',
    chunkSizeWarningLimit: 1024,
    rollupOptions: {
      input: {
        index: resolve(import.meta.dirname, 'index.html'),
        shop: resolve(import.meta.dirname, 'shop.html'),
        dashboard: resolve(import.meta.dirname, 'dashboard.html'),
      },
    },
  },
  // `npm run dev`: the pages at http://localhost:5173/app/, the API of a devnet's proxy
  server: {
    proxy: Object.fromEntries(
      ['/session', '/network', '/cluster', '/things', '/warehouse', '/ready', '/health'].map((p) => [
        p,
        process.env.FOGCHAIN_PROXY ?? 'http://127.0.0.1:8080',
      ]),
    ),
  },
});
