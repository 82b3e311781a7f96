// Test helper process: appends numbered records to a journal as fast as it can and prints each acknowledged number.
import { openJournal } from '../../coordinator/journal.ts';

const journal = await openJournal<{ n: number; payload: Uint8Array }>(process.argv[2]!);
let n = journal.recovered.length;
for (;;) {
  const batch = Array.from({ length: 8 }, () => n++);
  await Promise.all(
    batch.map((i) =>
      journal
        .append({ n: i, payload: new Uint8Array(1000 + (i % 7) * 3000).fill(i & 0xff) })
        .then(() => process.stdout.write(`${i}\n`)),
    ),
  );
}
