// What every page is: a function of the view (the network's reduced state) to markup, plus an optional mount step
// that attaches charts and handlers and returns their cleanup.
import type { ExplorerView } from '../view.ts';
import type { NetworkState, Proposal, RoundProposal } from '../../pallet-bindings/index.ts';

export interface Ctx {
  view: ExplorerView;
  net: NetworkState;
}

export interface Rendered {
  title: string;
  html: string;
  mount?: (root: HTMLElement) => (() => void) | void;
}

export function isRound(p: Proposal | undefined): p is RoundProposal {
  return p?.type === 'round';
}

export function roundsOf(net: NetworkState): RoundProposal[] {
  return net.proposals.filter(isRound);
}

/** A named figure among a round's extra metrics, or null. */
export function extra(metrics: { extra: { name: string; value: number }[] }, name: string): number | null {
  return metrics.extra.find((m) => m.name === name)?.value ?? null;
}

export function notFound(what: string): Rendered {
  return {
    title: 'not found',
    html: `<h1>Not found</h1><p class="error" data-error="E_NOT_FOUND">${what}</p><p><a href="#/network">Back to the network</a></p>`,
  };
}
