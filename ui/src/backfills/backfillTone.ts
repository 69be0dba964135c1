import type { Tone } from '../lib/status';

export function backfillTone(status: string): Tone {
  switch (status) {
    case 'SUCCEEDED':
      return 'good';
    case 'FAILED':
      return 'bad';
    case 'RUNNING':
    case 'REQUESTED':
      return 'info';
    default:
      return 'neutral';
  }
}
