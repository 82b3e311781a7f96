// `fedtune checkpoint attest`: a member verifies a checkpoint's round, re-measures its held-out loss, and attests.
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import type { Argv, CommandModule } from 'yargs';
import { datasetForManifest, fetchManifest } from '../../datasets/index.ts';
import type { BackendChoice } from '../../model/index.ts';
import type { RoundProposal } from '../../pallet-bindings/index.ts';
import type { VerifyReport } from '../../verify/index.ts';
import { BACKEND_CHOICES } from '../choices.ts';
import { FedtuneError } from '../errors.ts';
import { loadSigner, withSigner, type SignerArgs } from '../keys.ts';
import { withChain, type GlobalArgs } from '../options.ts';
import {
  logger,
  networkOf,
  parseFailureCode,
  parseHex32,
  parseNetworkId,
  print,
  submitChecked,
  usage,
  withClient,
  withNetwork,
} from '../protocol.ts';
import { fields } from '../table.ts';
import { fetchInto, loadNetwork, record, type Base } from './checkpoint.ts';

/** The code a "no" carries when none is given: the one check `attest` itself makes is the held-out loss. */
const DEFAULT_NO_CODE = 'E_EVAL_MISMATCH';

interface AttestArgs extends Base, SignerArgs {
  id: string;
  out?: string;
  data?: string;
  maxExamples: number;
  verdict: 'auto' | 'yes' | 'no';
  maxLoss?: number;
  code?: string;
  backend: BackendChoice;
  recompute: number;
  verify: boolean;
  source: string[];
}

export const attest: CommandModule<GlobalArgs, AttestArgs> = {
  command: 'attest <id>',
  describe:
    "Download a checkpoint, evaluate it on its dataset's held-out split and attest the measured loss (members)",
  builder: (y) =>
    withSigner(withNetwork(withChain(y)))
      .positional('id', { type: 'string', demandOption: true, describe: 'Checkpoint id (0x + 64 hex)' })
      .option('out', { type: 'string', describe: 'Where to download it (default a cache folder)' })
      .option('data', { type: 'string', describe: 'Local copy of a dataset that is not built in' })
      .option('max-examples', {
        type: 'number',
        default: 256,
        describe: 'Held-out examples scored (evenly spaced)',
      })
      .option('verdict', {
        choices: ['auto', 'yes', 'no'] as const,
        default: 'auto' as const,
        describe:
          'auto: yes when the measured loss is finite, within --max-loss, and within 5% (+0.05) of the loss the coordinator committed',
      })
      .option('max-loss', { type: 'number', describe: 'auto: the highest acceptable eval loss' })
      .option('code', {
        type: 'string',
        describe:
          'Why a "no": the failed check\'s code (A-Z, 0-9, _; at most 32), like E_AGGREGATE_MISMATCH; default E_EVAL_MISMATCH, the loss check attest makes itself',
      })
      .option('backend', {
        choices: BACKEND_CHOICES,
        default: 'auto' as BackendChoice,
      })
      .option('verify', {
        type: 'boolean',
        default: true,
        describe:
          "Verify the checkpoint's round first (`round verify`: its aggregate from the published updates); a failed check attests no with its code. --no-verify attests on the measured loss alone",
      })
      .option('recompute', {
        type: 'number',
        default: 1,
        describe: 'Contributions the verification re-executes',
      })
      .option('source', {
        type: 'string',
        array: true,
        default: [] as string[],
        describe: "More base URLs serving the round's /rounds, /blobs and /checkpoints",
      })
      .check((argv) => {
        const r = argv.recompute as number;
        if (!(Number.isSafeInteger(r) && r >= 0))
          throw usage(`--recompute must be a whole number >= 0, got ${r}`);
        const n = argv.maxExamples as number;
        if (!(Number.isInteger(n) && n >= 1))
          throw usage(`--max-examples must be a whole number >= 1, got ${n}`);
        const max = argv.maxLoss as number | undefined;
        if (max !== undefined && !Number.isFinite(max))
          throw usage(`--max-loss must be a number, got ${max}`);
        if (argv.code !== undefined && argv.verdict === 'yes')
          throw usage('--code says why a verdict is no; --verdict yes takes none');
        return true;
      }) as unknown as Argv<AttestArgs>,
  async handler(args) {
    const { disposeModel, initBackend, modelFromSafetensors } = await import('../../model/index.ts');
    const { evaluateHeldOut } = await import('../../coordinator/index.ts');
    const id = parseHex32('the checkpoint id', args.id);
    const code = await parseFailureCode(args.code ?? DEFAULT_NO_CODE);
    const log = logger(args);
    const signer = await loadSigner(args);
    await initBackend({ backend: args.backend, logger: log });
    await withClient(args, log, async (client) => {
      const net = await loadNetwork(client, args);
      const c = record(net, id);
      // Checked before the download and evaluation, which take a while, rather than by the chain afterwards.
      if (!net.members.includes(signer.address))
        throw new FedtuneError('E_NOT_MEMBER', `${signer.address} is not a member of network ${net.name}`);
      if (c.attests[signer.address] !== undefined)
        throw new FedtuneError('E_DOUBLE_ATTEST', `${signer.address} already attested ${id}`);
      const p = net.proposals[c.proposal] as RoundProposal;
      const reported = p.finalized[c.round]!.metrics.evalLoss;
      const out = resolve(args.out ?? join(homedir(), '.cache', 'fedtune', 'checkpoints', id.slice(2)));
      // The round first: a checkpoint that is not the aggregate of its published updates is attested no, with why.
      let verification: VerifyReport | null = null;
      if (args.verify) {
        const { verifyRound } = await import('../../verify/index.ts');
        const { reexecuteContribution } = await import('../../worker/index.ts');
        verification = await verifyRound({
          net,
          network: parseNetworkId(args.network),
          proposal: c.proposal,
          round: c.round,
          blockHash: async (n) => (await client.api.rpc.chain.getBlockHash(n)).toHex(),
          sources: args.source,
          recompute: args.recompute,
          reexecute: reexecuteContribution,
          data: args.data,
          cacheDir: join(out, 'verify'),
          logger: log,
          onStep: (s) => log.info({ step: s.step, ok: s.ok, ms: Math.round(s.ms) }, s.detail),
        });
      }
      const { bytes } = await fetchInto(client, net, id, out, [], log, args.io);
      const dataset = net.datasets[p.round.dataset];
      if (!dataset)
        throw new FedtuneError('E_UNKNOWN_DATASET', `dataset ${p.round.dataset} is not registered`);
      const manifest = await fetchManifest(dataset.manifestUri, p.round.dataset);
      const model = modelFromSafetensors(bytes);
      let measured: number;
      try {
        measured = (
          await evaluateHeldOut(model, datasetForManifest(manifest, args.data), manifest, {
            maxExamples: args.maxExamples,
          })
        ).loss;
      } finally {
        disposeModel(model);
      }
      const ok =
        (verification === null || verification.ok) &&
        Number.isFinite(measured) &&
        (args.maxLoss === undefined || measured <= args.maxLoss) &&
        measured <= reported * 1.05 + 0.05;
      const verdict = args.verdict === 'auto' ? ok : args.verdict === 'yes';
      // A failed verification names its own code; otherwise a "no" is --code's (the loss check's by default).
      const noCode = verification && !verification.ok ? verification.code! : code;
      const { inclusion, state } = await submitChecked(
        client,
        {
          signer,
          network: parseNetworkId(args.network),
          // A "no" carries its failure code (attestWithCode on chain); a "yes" none.
          calls: [
            { type: 'attest', checkpoint: id, evalLoss: measured, verdict, code: verdict ? null : noCode },
          ],
        },
        args.from,
      );
      const after = networkOf(state, parseNetworkId(args.network)).checkpoints[id]!;
      const result = {
        id,
        evalLoss: measured,
        reportedEvalLoss: reported,
        verdict,
        code: verdict ? null : noCode,
        ...(verification ? { verification } : {}),
        certified: after.certified,
        ...inclusion,
      };
      print(args, result, () =>
        fields([
          ['checkpoint', id],
          ['measured loss', measured.toFixed(4)],
          ['reported loss', reported.toFixed(4)],
          [
            'verification',
            verification === null
              ? 'skipped (--no-verify)'
              : verification.ok
                ? `verified in ${verification.seconds.toFixed(1)} s (${verification.recomputed.length} re-executed)`
                : `FAILED [${verification.code}]: ${verification.message}`,
          ],
          ['verdict', verdict ? 'yes' : `no: ${noCode}`],
          ['block', inclusion.blockNumber],
          ['certified', after.certified ? `yes (block ${after.certifiedAt})` : 'not yet'],
        ]),
      );
    });
  },
};
