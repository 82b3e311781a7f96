// README.md's walkthrough, run as written: every command below must appear verbatim in the README, and bash reads it as
// a newcomer would type it (a temporary HOME and working folder, `fedtune` on PATH). The services (`… &`: the devnet,
// the coordinator, the trainers) and `ls` run as bash runs them, `fedtune` as its own process; the one-shot `fedtune`
// commands run in this process: bash expands the line (variables, quotes, `~`) and hands its words to a shell function
// named `fedtune` instead of the binary, and main() runs those words in the shell's HOME, environment and working folder
// (a process of its own would cost each about 1.3 CPU-seconds of Node start and module loading). Prints each step's time.
import { expect } from 'chai';
import { spawn, type ChildProcess } from 'node:child_process';
import {
  chmodSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { pino } from 'pino';
import {
  connect,
  initialState,
  syncState,
  type ChainClient,
  type Hex32,
  type ProtocolState,
} from '../pallet-bindings/index.ts';
import { BIN, inProcess } from './run-cli.ts';

const README = readFileSync(fileURLToPath(new URL('../README.md', import.meta.url)), 'utf8');

/** The README's shell text with `\`-continued lines joined and runs of blanks squeezed, for verbatim matching. */
const flat = (text: string) => text.replace(/\\\n\s*/g, ' ').replace(/[ \t]+/g, ' ');
const README_FLAT = flat(README);

/** A command of the walkthrough; fails the test at once if the README does not show it. */
function cmd(text: string): string {
  const one = flat(text.trim());
  if (!README_FLAT.includes(one))
    throw new Error(`README.md no longer shows this walkthrough command:\n  ${one}`);
  return one;
}

const ALICE = '5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQY';
const MODEL = `'{"kind":"lm","vocabSize":260,"context":32,"dModel":32,"nLayer":1,"nHead":2,"dMlp":128,"dropout":0}'`;

// The walkthrough, in order (README.md, "The walkthrough, end to end").
const W = {
  devnet: cmd('fedtune devnet --tmp --port 0 &'),
  network: cmd(`fedtune network create --seed //Alice --name demo \\
  --member ${ALICE} \\
  --member 5FHneW46xGXgs5mUiveU4sbTyGBzmstUspZC92UhjJM694ty \\
  --member 5FLSigC9HGRKVhB9FiEo4Y3koPsNmBmLJbpXg2mp1hXcS59Y \\
  --quorum 2/3 --voting-period 10 --coordinator 5CiPPseXPECbkjWCa6MnjNokrgYjMqmKndv2rSnekmSK2DjL`),
  shard: cmd('fedtune dataset shard sotu --scheme partition --out sotu.json'),
  register: cmd('fedtune dataset register sotu.json --seed //Alice'),
  coordinator: cmd(
    'fedtune coordinator --seed //Ferdie --listen 127.0.0.1:7300 --data-dir .fedtune/coordinator --data my-data=./my-data.jsonl &',
  ),
  dave: cmd('fedtune worker run --coordinator ws://127.0.0.1:7300 --seed //Dave &'),
  eve: cmd('fedtune worker run --coordinator ws://127.0.0.1:7300 --seed //Eve &'),
  propose: cmd(`fedtune dao propose-round --seed //Alice --kind pretrain --dataset $ROOT \\
  --model-config ${MODEL} \\
  --rounds 1 --min-workers 2 --max-workers 2 --round-deadline 120 --reward 10000000000000 \\
  --local-steps 10 --batch-size 8 --lr 0.005 --update-encoding int8`),
  voteBob: cmd('fedtune dao vote 0 aye --seed //Bob'),
  voteCharlie: cmd('fedtune dao vote 0 aye --seed //Charlie'),
  advance: cmd('fedtune chain advance 10'),
  show: cmd('fedtune dao show 0'),
  list: cmd('fedtune checkpoint list'),
  attestAlice: cmd('fedtune checkpoint attest $CKPT --seed //Alice'),
  attestBob: cmd('fedtune checkpoint attest $CKPT --seed //Bob'),
  download: cmd('fedtune checkpoint download $CKPT --out ./ckpt'),
  verify: cmd('fedtune checkpoint verify ./ckpt'),
  generate: cmd('fedtune generate --checkpoint ./ckpt --prompt "Call me " --tokens 40'),
  receipts: cmd('ls ~/.cache/fedtune/worker/$FEDTUNE_NETWORK/*/receipts/'),
  // Own data, on both sides: the coordinator above has --data, the trainers restart with theirs.
  shardMine: cmd('fedtune dataset shard ./my-data.jsonl --scheme iid --shards 2 --out my-data.json'),
  registerMine: cmd('fedtune dataset register my-data.json --seed //Alice'),
  daveMine: cmd(
    'fedtune worker run --coordinator ws://127.0.0.1:7300 --seed //Dave --data ./my-data.jsonl &',
  ),
  eveMine: cmd('fedtune worker run --coordinator ws://127.0.0.1:7300 --seed //Eve --data ./my-data.jsonl &'),
  proposeMine: cmd(`fedtune dao propose-round --seed //Alice --kind pretrain --dataset $MINE \\
  --model-config ${MODEL} \\
  --rounds 1 --min-workers 2 --max-workers 2 --round-deadline 120 \\
  --local-steps 10 --batch-size 8 --lr 0.005`),
  voteBobMine: cmd('fedtune dao vote 1 aye --seed //Bob'),
  voteCharlieMine: cmd('fedtune dao vote 1 aye --seed //Charlie'),
  showMine: cmd('fedtune dao show 1'),
};

/** Own data: a small .jsonl of plain text records (the README says "your own records"). */
function writeOwnData(path: string): void {
  const words = 'the whale ship sea captain harpoon deck crew wind sail storm calm night morning'.split(' ');
  const lines: string[] = [];
  for (let i = 0; i < 64; i++) {
    const text = Array.from({ length: 40 }, (_, j) => words[(i * 7 + j * 3) % words.length]).join(' ');
    lines.push(JSON.stringify({ text: `${text}.` }));
  }
  writeFileSync(path, `${lines.join('\n')}\n`);
}

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

interface Shell {
  env: NodeJS.ProcessEnv;
  cwd: string;
  port: number;
}

/** The command as bash runs it here: the coordinator's port is a free one instead of 7300, services lose their `&`. */
function local(shell: Shell, command: string): string {
  return command.replaceAll('127.0.0.1:7300', `127.0.0.1:${shell.port}`).replace(/\s*&$/, '');
}

function run(shell: Shell, command: string, timeoutMs = 180_000) {
  return new Promise<{ status: number | null; stdout: string; stderr: string }>((resolve, reject) => {
    const child = spawn('bash', ['-c', local(shell, command)], { cwd: shell.cwd, env: shell.env });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', reject);
    child.on('close', (status) => {
      clearTimeout(timer);
      resolve({ status, stdout, stderr });
    });
  });
}

/** The words bash hands to `fedtune` for this line: the line run with `fedtune` a function that prints its arguments. */
async function fedtuneWords(shell: Shell, command: string): Promise<string[]> {
  const printWords = `fedtune() { printf '%s\\0' "$@"; }; ${local(shell, command)}`;
  const result = await run(shell, printWords);
  if (result.status !== 0) throw new Error(`bash could not expand ${command}:\n${result.stderr}`);
  const words = result.stdout.split('\0');
  words.pop(); // after the last NUL
  return words;
}

/**
 * A one-shot `fedtune` command of the walkthrough, in this process: bash's words for it, run by main() with the shell's
 * environment (a copy of this process's with HOME, PATH and the walkthrough's variables) and working folder, what the
 * command writes to stdout and stderr (through main's io or directly, as @polkadot/api's notices do) captured.
 */
async function runInProcess(shell: Shell, command: string) {
  return inProcess(
    await fedtuneWords(shell, command),
    { ...shell.env, FEDTUNE_LOG_LEVEL: 'warn' },
    { cwd: shell.cwd, direct: true },
  );
}

interface Service {
  child: ChildProcess;
  out: () => string;
  err: () => string;
  /** Resolves with the first match of `pattern` in stdout. */
  waitFor(pattern: RegExp, what: string, ms?: number): Promise<RegExpExecArray>;
  stop(): Promise<number>;
}

function service(shell: Shell, command: string): Service {
  // exec: bash becomes the fedtune process, so signals reach it.
  const child = spawn('bash', ['-c', `exec ${local(shell, command)}`], { cwd: shell.cwd, env: shell.env });
  let out = '';
  let err = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  return {
    child,
    out: () => out,
    err: () => err,
    async waitFor(pattern, what, ms = 120_000) {
      const until = Date.now() + ms;
      for (;;) {
        const match = pattern.exec(out);
        if (match) return match;
        if (child.exitCode !== null)
          throw new Error(`${what}: the process exited (${child.exitCode}):\n${err}`);
        if (Date.now() > until)
          throw new Error(`${what}: not within ${ms / 1000} s; stderr:\n${err.slice(-3000)}`);
        await new Promise((resolve) => setTimeout(resolve, 200));
      }
    },
    async stop() {
      const t0 = performance.now();
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
      await exited;
      clearTimeout(timer);
      return performance.now() - t0;
    },
  };
}

describe('README walkthrough, end to end', function () {
  this.timeout(15 * 60_000);
  const timings: [string, number][] = [];
  const services: Service[] = [];
  let home: string;
  let shell: Shell;
  let network = '';
  const started = performance.now();

  /** Runs a README command (a `fedtune` one in this process), expects success, records its time. */
  async function step(name: string, command: string) {
    const t0 = performance.now();
    const result = command.startsWith('fedtune ')
      ? await runInProcess(shell, command)
      : await run(shell, command);
    timings.push([name, performance.now() - t0]);
    expect(result.status, `${command}\nstdout:\n${result.stdout}\nstderr:\n${result.stderr}`).to.equal(0);
    // No @polkadot/api notice, and no stack trace, on a newcomer's terminal.
    expect(result.stderr).to.not.include('MetadataApi');
    return result;
  }

  // One connection, however many reads start at once (two trainers' registrations are awaited side by side): a second
  // one would be left behind, reconnecting to the stopped devnet for the rest of the mocha worker's life.
  let client: Promise<ChainClient> | null = null;
  let known: ProtocolState | undefined;
  /**
   * The protocol state, read in this process (waiting is not part of the walkthrough; a newcomer re-runs dao show),
   * folded on from the last read rather than replayed from block 0 on every poll.
   */
  async function chainState() {
    client ??= connect({ url: shell.env.FEDTUNE_CHAIN!, logger: pino({ level: 'silent' }) });
    const only = network as Hex32;
    known = await syncState(await client, { state: known?.only === only ? known : initialState({ only }) });
    return known.networks[only]!;
  }

  async function untilStatus(proposal: number, status: string, what: string, ms = 300_000) {
    const t0 = performance.now();
    const until = Date.now() + ms;
    for (;;) {
      const p = (await chainState()).proposals[proposal];
      if (p?.status === status) break;
      if (p?.status === 'failed' || p?.status === 'rejected')
        throw new Error(
          `proposal ${proposal} ${p.status}: ${(p.type === 'round' && p.failure?.reason) || ''}\n${coordinatorLog()}`,
        );
      if (Date.now() > until) throw new Error(`${what}: still ${p?.status}\n${coordinatorLog()}`);
      await new Promise((resolve) => setTimeout(resolve, 1000));
    }
    timings.push([what, performance.now() - t0]);
  }
  const coordinatorLog = () => `coordinator stderr:\n${services[1]?.err().slice(-4000) ?? ''}`;

  before(async () => {
    home = mkdtempSync(join(tmpdir(), 'fedtune-readme-'));
    const bin = join(home, 'bin');
    const cwd = join(home, 'work');
    mkdirSync(bin);
    mkdirSync(cwd);
    writeFileSync(join(bin, 'fedtune'), `#!/bin/sh\nexec "${process.execPath}" "${BIN}" "$@"\n`);
    chmodSync(join(bin, 'fedtune'), 0o755);
    writeOwnData(join(cwd, 'my-data.jsonl'));
    const env: NodeJS.ProcessEnv = { ...process.env, HOME: home, PATH: `${bin}:${process.env.PATH}` };
    for (const k of Object.keys(env)) if (k.startsWith('FEDTUNE_')) delete env[k];
    // A newcomer's default: info, so that lines such as a trainer's "stopping" show.
    env.FEDTUNE_LOG_LEVEL = 'info';
    shell = { env, cwd, port: await freePort() };
  });

  after(async () => {
    await (await client?.catch(() => null))?.close();
    await Promise.all(services.reverse().map((s) => s.stop()));
    const total = (performance.now() - started) / 1000;
    process.stdout.write(
      `\n      README walkthrough timings (s):\n${timings
        .map(([name, ms]) => `        ${(ms / 1000).toFixed(1).padStart(6)}  ${name}`)
        .join('\n')}\n        ${total.toFixed(1).padStart(6)}  total\n`,
    );
    rmSync(home, { recursive: true, force: true });
  });

  it('runs the dev chain, the DAO, a coordinator and two trainers on one machine through attest, download and generate', async () => {
    let t0 = performance.now();
    const devnet = service(shell, W.devnet);
    services.push(devnet);
    const [, url] = await devnet.waitFor(/export FEDTUNE_CHAIN=(ws:\/\/\S+)/, 'the devnet says where it is');
    shell.env.FEDTUNE_CHAIN = url;
    timings.push(['fedtune devnet (ready)', performance.now() - t0]);

    const created = await step('network create', W.network);
    network = /export FEDTUNE_NETWORK=(0x[0-9a-f]{64})/.exec(created.stdout)![1]!;
    shell.env.FEDTUNE_NETWORK = network;
    await step('dataset shard sotu', W.shard);
    const registered = await step('dataset register', W.register);
    shell.env.ROOT = /root (0x[0-9a-f]{64})/.exec(registered.stdout)![1]!;

    t0 = performance.now();
    const coordinator = service(shell, W.coordinator);
    services.push(coordinator);
    await coordinator.waitFor(/workers:\s+ws:\/\//, 'the coordinator is ready');
    timings.push(['coordinator (ready)', performance.now() - t0]);

    t0 = performance.now();
    const trainers = [service(shell, W.dave), service(shell, W.eve)];
    services.push(...trainers);
    // Neither passes --network or --cache: each learns the network from the coordinator, registers itself and
    // keeps its own cache under HOME.
    await Promise.all(
      [
        '5DAAnrj7VHTznn2AWBemMuyBwZWs6FNFjdyVXUeYum3PTXFy',
        '5HGjWAeFDfFCWPsjFQdVV2Msvz2XtMktvgocEZcCj68kUMaw',
      ].map(async (account) => {
        const until = Date.now() + 180_000;
        while (!(await registeredWorker(account))) {
          if (Date.now() > until) throw new Error(`${account} did not register; ${trainers[0]!.err()}`);
          await new Promise((resolve) => setTimeout(resolve, 1000));
        }
      }),
    );
    timings.push(['two trainers registered themselves', performance.now() - t0]);

    const proposed = await step('dao propose-round', W.propose);
    expect(proposed.stdout).to.match(/voting until:\s+block \d+/);
    const bob = await step('dao vote (Bob)', W.voteBob);
    expect(bob.stdout).to.match(/decided at block \d+, when the voting period ends/);
    await step('dao vote (Charlie)', W.voteCharlie);
    // The deadline block comes on its own within 10 x 6 s; a script does not wait for it.
    await step('chain advance 10', W.advance);
    await untilStatus(0, 'completed', 'voting period, round trained and committed');
    const shown = await step('dao show', W.show);
    expect(shown.stdout).to.match(/status:\s+completed at block \d+/);

    const listed = await step('checkpoint list', W.list);
    const ckpt = /(0x[0-9a-f]{64})\s*$/m.exec(listed.stdout)?.[1];
    expect(ckpt, listed.stdout).to.be.a('string');
    shell.env.CKPT = ckpt!;
    const pretrain = (await chainState()).proposals[0]!;
    expect(pretrain.type === 'round' && pretrain.finalized[0]!.contributors.length).to.equal(2);

    await step('checkpoint attest (Alice)', W.attestAlice);
    await step('checkpoint attest (Bob)', W.attestBob);
    await step('checkpoint download', W.download);
    await step('checkpoint verify', W.verify);
    const generated = await step('generate', W.generate);
    expect(generated.stdout.trim().length).to.be.greaterThan(0);

    // Each trainer's receipt, in its own cache, proven against the committed round.
    const receipts = await step('ls receipts', W.receipts);
    expect(
      receipts.stdout
        .trim()
        .split('\n')
        .filter((l) => l.endsWith('.json')),
    ).to.have.length(2);
    for (const account of [
      '5DAAnrj7VHTznn2AWBemMuyBwZWs6FNFjdyVXUeYum3PTXFy',
      '5HGjWAeFDfFCWPsjFQdVV2Msvz2XtMktvgocEZcCj68kUMaw',
    ]) {
      const dir = join(home, '.cache', 'fedtune', 'worker', network, account, 'receipts');
      const until = Date.now() + 60_000;
      let verified = false;
      while (!verified && Date.now() < until) {
        const files = existsSync(dir) ? readdirSync(dir).filter((f) => f.endsWith('.json')) : [];
        verified =
          files.length === 1 &&
          (JSON.parse(readFileSync(join(dir, files[0]!), 'utf8')) as { result?: { verified: boolean } })
            .result?.verified === true;
        if (!verified) await new Promise((resolve) => setTimeout(resolve, 500));
      }
      expect(verified, `${account}'s receipt holds a verified proof`).to.equal(true);
    }

    // Ctrl-C on both trainers: each says it is stopping and goes.
    for (const [i, t] of trainers.entries()) {
      const ms = await t.stop();
      timings.push([`trainer ${i + 1} stopped on SIGTERM`, ms]);
      expect(t.err()).to.include('stopping');
      services.splice(services.indexOf(t), 1);
    }
  });

  it('trains on own data, with --data on the coordinator and both trainers', async () => {
    expect(network, 'the first part ran').to.not.equal('');
    await step('dataset shard ./my-data.jsonl', W.shardMine);
    const registered = await step('dataset register my-data.json', W.registerMine);
    shell.env.MINE = /root (0x[0-9a-f]{64})/.exec(registered.stdout)![1]!;
    const trainers = [service(shell, W.daveMine), service(shell, W.eveMine)];
    services.push(...trainers);
    await step('dao propose-round (own data)', W.proposeMine);
    await step('dao vote 1 (Bob)', W.voteBobMine);
    await step('dao vote 1 (Charlie)', W.voteCharlieMine);
    await step('chain advance 10 (own data)', W.advance);
    await untilStatus(1, 'completed', 'own data: voting period, round trained and committed');
    const shown = await step('dao show 1', W.showMine);
    expect(shown.stdout).to.match(/status:\s+completed at block \d+/);
    const own = (await chainState()).proposals[1]!;
    expect(own.type === 'round' && own.finalized[0]!.contributors.length).to.equal(2);
  });

  async function registeredWorker(account: string): Promise<boolean> {
    return (await chainState()).workers[account] !== undefined;
  }
});
