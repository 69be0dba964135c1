// What the browser tests and the benchmark share: a `freshet serve` process over
// a copy of a project, and headless Chromium (Debian's, never a downloaded one).
import { spawn, type ChildProcess } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser, type Page } from 'playwright-core';

export const uiDir = resolve(dirname(fileURLToPath(import.meta.url)), '..');
export const repoRoot = resolve(uiDir, '..');
export const resultsDir = join(uiDir, 'test-results');

/** The binary `make build` made, with the UI embedded (FRESHET_BIN overrides). */
export function freshetBin(): string {
  const bin = process.env.FRESHET_BIN ?? join(repoRoot, 'bin', 'freshet');
  if (!existsSync(bin)) throw new Error(`${bin} does not exist: build it with \`make build\` (the tests use the binary with the UI embedded)`);
  return bin;
}

export function chromiumPath(): string {
  const p = process.env.CHROMIUM ?? '/usr/bin/chromium';
  if (!existsSync(p)) throw new Error(`${p} does not exist: install Debian's chromium (apt-get install -y chromium); the tests never download a browser`);
  return p;
}

export function tempDir(prefix: string): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

/**
 * Copies examples/sales into a new temporary folder (without its catalog or
 * the files its steps wrote), so the repository's example stays untouched.
 */
export function copyExample(): string {
  const src = join(repoRoot, 'examples', 'sales');
  const dst = join(tempDir('freshet-ui-'), 'sales');
  const skip = new Set(['.freshet', 'data/raw', 'data/clean', 'warehouse', 'reports']);
  cpSync(src, dst, { recursive: true, filter: (p) => !skip.has(relative(src, p)) });
  return dst;
}

export interface Server {
  url: string;
  dir: string;
  log: () => string;
  stop: () => Promise<void>;
}

/** Starts `freshet serve -f dir` on a free port of 127.0.0.1 and waits until /readyz answers. */
export async function startServe(dir: string, args: string[] = []): Promise<Server> {
  const proc: ChildProcess = spawn(freshetBin(), ['serve', '-f', dir, '--addr', '127.0.0.1:0', '--log-format', 'json', ...args], {
    stdio: ['ignore', 'ignore', 'pipe'],
    env: { ...process.env, FRESHET_DATABASE_URL: '' },
  });
  let log = '';
  let exited = false;
  proc.on('exit', () => {
    exited = true;
  });
  const addr = await new Promise<string>((resolveAddr, reject) => {
    const timer = setTimeout(() => reject(new Error(`freshet serve did not listen within 90s:\n${log}`)), 90_000);
    let buf = '';
    proc.stderr!.on('data', (chunk: Buffer) => {
      const text = chunk.toString();
      log += text;
      buf += text;
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        try {
          const entry = JSON.parse(line) as { '@message'?: string; addr?: string };
          if (entry['@message'] === 'serving' && entry.addr) {
            clearTimeout(timer);
            resolveAddr(entry.addr);
          }
        } catch {
          // not a JSON line
        }
      }
    });
    proc.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`freshet serve exited (${code}) before listening:\n${log}`));
    });
  });
  const url = `http://${addr}`;
  const deadline = Date.now() + 60_000;
  for (;;) {
    try {
      const r = await fetch(`${url}/readyz`);
      if (r.ok) break;
    } catch {
      // not yet
    }
    if (Date.now() > deadline) throw new Error(`${url}/readyz not ready within 60s:\n${log}`);
    await new Promise((r) => setTimeout(r, 200));
  }
  return {
    url,
    dir,
    log: () => log,
    stop: async () => {
      if (exited) return;
      proc.kill('SIGINT');
      const done = new Promise<void>((r) => proc.once('exit', () => r()));
      const killed = await Promise.race([done.then(() => false), new Promise<boolean>((r) => setTimeout(() => r(true), 20_000))]);
      if (killed) {
        proc.kill('SIGKILL');
        await done;
      }
    },
  };
}

/** A GraphQL call from outside the browser (setting up what a user did elsewhere). */
export async function gqlPost<T>(url: string, query: string, variables: Record<string, unknown> = {}, token?: string): Promise<T> {
  const headers: Record<string, string> = { 'Content-Type': 'application/json' };
  if (token) headers.Authorization = `Bearer ${token}`;
  const r = await fetch(`${url}/graphql`, { method: 'POST', headers, body: JSON.stringify({ query, variables }) });
  const body = (await r.json()) as { data?: T; errors?: { message: string }[] };
  if (body.errors?.length) throw new Error(body.errors.map((e) => e.message).join('; '));
  return body.data as T;
}

export async function launchChromium(): Promise<Browser> {
  return chromium.launch({ executablePath: chromiumPath(), headless: true, args: ['--no-sandbox'] });
}

export async function screenshot(page: Page, name: string): Promise<string> {
  mkdirSync(resultsDir, { recursive: true });
  const path = join(resultsDir, `${name}.png`);
  await page.screenshot({ path, fullPage: false });
  return path;
}

export function removeDir(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
}
