import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { sql } from 'kysely';
import { openDatabase, type OpenDatabase } from './database.ts';
import { WalDurability } from './durability.ts';

describe('WAL durability (group commit)', () => {
  let dir: string;
  let open: OpenDatabase;
  let durability: WalDurability;

  before(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'grove-durability-'));
    open = await openDatabase(path.join(dir, 'grove.db'));
    durability = open.durability as WalDurability;
  });
  after(async () => {
    await open.db.destroy();
    await open.durability.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('runs no fsync when nothing was written since the last one', async () => {
    await durability.sync();
    const before = durability.syncs;
    await open.db.selectFrom('orgs').selectAll().execute();
    await durability.sync();
    assert.equal(durability.syncs, before);
  });

  it('runs an fsync for a write, and one or two for many concurrent writers, not one each', async () => {
    const before = durability.syncs;
    await sql`insert into orgs (id, name, created_at) values ('org_d1', 'durable-one', '2026-01-01')`.execute(open.db);
    await durability.sync();
    assert.equal(durability.syncs, before + 1);
    const writers = Array.from({ length: 20 }, async (_, i) => {
      await sql`insert into orgs (id, name, created_at) values (${`org_dc${i}`}, ${`durable-c${i}`}, '2026-01-01')`.execute(open.db);
      await durability.sync();
    });
    await Promise.all(writers);
    assert.ok(durability.syncs - (before + 1) <= 2, `${durability.syncs - before - 1} fsyncs for 20 concurrent writers`);
  });

  it('counts a write made while an fsync is running for the next fsync, not the one in flight', async () => {
    await sql`insert into orgs (id, name, created_at) values ('org_d2', 'durable-two', '2026-01-01')`.execute(open.db);
    const first = durability.sync();
    await sql`insert into orgs (id, name, created_at) values ('org_d3', 'durable-three', '2026-01-01')`.execute(open.db);
    const before = durability.syncs;
    await Promise.all([first, durability.sync()]);
    assert.equal(durability.syncs, before + 2, 'the second write needed an fsync that started after it');
  });

  it('does nothing while nothing was written, and fails rather than pretends when there is no WAL to make durable', async () => {
    const lone = new WalDurability(path.join(dir, 'missing.db'));
    await lone.sync(); // nothing written: nothing to do, even though there is no WAL file
    lone.wrote();
    await assert.rejects(lone.sync(), /ENOENT/);
    await lone.close();
  });
});
