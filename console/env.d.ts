// Stylesheets imported by main.ts: esbuild gathers them into app.css.
declare module '*.css'
