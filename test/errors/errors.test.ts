// Every folder's error type has one shape (errors/): code, message and reason, exit status, details, and instanceof
// both its own class and CodedError.
import { expect } from 'chai';
import { CodedError, codeOf, isCoded } from '../../errors/index.ts';
import { AggregationError } from '../../aggregation/index.ts';
import { CheckpointError } from '../../checkpoints/index.ts';
import { FedtuneError } from '../../cli/index.ts';
import { CoordinatorError, JournalError } from '../../coordinator/index.ts';
import { DemoError } from '../../demo/index.ts';
import { DatasetError } from '../../datasets/index.ts';
import { DevnetError } from '../../devchain/index.ts';
import { ExplorerError } from '../../explorer/index.ts';
import { MerkleError } from '../../merkle/index.ts';
import { ModelError } from '../../model/index.ts';
import { PalletError, PayloadError, ProtocolRejection } from '../../pallet-bindings/index.ts';
import { WireError } from '../../proto/index.ts';
import { PublicationError, VerifyError, VerifyFailure } from '../../verify/index.ts';
import { WorkerError } from '../../worker/index.ts';

type Make = (code: string, message: string) => CodedError;

const classes: [string, Make, number][] = [
  ['AggregationError', (c, m) => new AggregationError(c as 'E_WEIGHTS', m), 1],
  ['CheckpointError', (c, m) => new CheckpointError(c, m), 1],
  ['FedtuneError', (c, m) => new FedtuneError(c, m), 1],
  ['CoordinatorError', (c, m) => new CoordinatorError(c, m), 1],
  ['JournalError', (c, m) => new JournalError(c, m), 1],
  ['DemoError', (c, m) => new DemoError(c, m), 1],
  ['DatasetError', (c, m) => new DatasetError(c, m), 2],
  ['DevnetError', (c, m) => new DevnetError(c, m), 1],
  ['ExplorerError', (c, m) => new ExplorerError(c, m), 1],
  ['MerkleError', (c, m) => new MerkleError(c, m), 1],
  ['ModelError', (c, m) => new ModelError(c, m), 1],
  ['PalletError', (c, m) => new PalletError(c, m), 1],
  ['PayloadError', (c, m) => new PayloadError(c, m), 2],
  ['ProtocolRejection', (c, m) => new ProtocolRejection(c, m), 1],
  ['WireError', (c, m) => new WireError(c, m), 1],
  ['WorkerError', (c, m) => new WorkerError(c, m), 1],
  ['VerifyError', (c, m) => new VerifyError(c, m), 1],
  ['PublicationError', (c, m) => new PublicationError(c, m), 1],
];

describe('errors: one shape for every folder', () => {
  for (const [name, make, exitCode] of classes) {
    it(`${name} has a code, a reason, an exit status and details, and is a CodedError`, () => {
      const error = make('E_SOMETHING', 'what was wrong; what to do');
      expect(error).to.be.instanceOf(Error).and.instanceOf(CodedError);
      expect(error.name).to.equal(name);
      expect(error.code).to.equal('E_SOMETHING');
      expect(error.message).to.equal('what was wrong; what to do');
      expect(error.reason).to.equal(error.message);
      expect(error.exitCode).to.equal(exitCode);
      expect(error.details).to.deep.equal({});
      expect(JSON.parse(JSON.stringify(error))).to.deep.equal({
        name,
        code: 'E_SOMETHING',
        reason: 'what was wrong; what to do',
        details: {},
      });
      expect(isCoded(error)).to.equal(true);
      expect(codeOf(error)).to.equal('E_SOMETHING');
    });
  }

  it('keeps instanceof apart between folders, and subclasses within one', () => {
    expect(new ProtocolRejection('E_X', 'x')).to.be.instanceOf(PalletError);
    expect(new PayloadError('E_X', 'x')).to.be.instanceOf(PalletError);
    expect(new DatasetError('E_X', 'x')).to.not.be.instanceOf(PalletError);
    expect(new MerkleError('E_X', 'x')).to.not.be.instanceOf(DatasetError);
  });

  it('VerifyFailure names the account at fault, also in its details', () => {
    const failure = new VerifyFailure('E_AGGREGATE_MISMATCH', 'the aggregate differs', '5Grw');
    expect(failure).to.be.instanceOf(CodedError);
    expect(failure.culprit).to.equal('5Grw');
    expect(failure.details).to.deep.equal({ culprit: '5Grw' });
    expect(failure.reason).to.equal('the aggregate differs');
  });

  it('carries an exit status, a cause and details when given', () => {
    const cause = new Error('socket closed');
    const error = new PalletError('E_DISPATCH_FAILED', 'landed but failed', {
      exitCode: 2,
      cause,
      details: { block: 7 },
    });
    expect(error.exitCode).to.equal(2);
    expect(error.cause).to.equal(cause);
    expect(error.details).to.deep.equal({ block: 7 });
    expect(new DatasetError('E_SHARD_BAD_PARAM', 'x', { exitCode: 1 }).exitCode).to.equal(1);
  });

  it('codeOf gives a fallback for errors without a stable code', () => {
    expect(codeOf(new Error('plain'))).to.equal('E_INTERNAL');
    expect(codeOf({ code: 'ENOENT' }, 'E_IO')).to.equal('E_IO');
    expect(codeOf(null)).to.equal('E_INTERNAL');
    expect(isCoded({ code: 'E_FROM_ELSEWHERE', message: 'm' })).to.equal(true);
  });
});
