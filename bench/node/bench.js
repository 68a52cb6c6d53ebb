'use strict';
// Node peer for dotlock's bench (cmd/bench drives it): proper-lockfile
// 4.1.2, looping in its own process. The protocol is the Go worker's:
//
//   node bench.js uncontended LOCK BATCHES OPS         -> "ns <per op>" per batch
//   node bench.js contend LOCK COUNTER ID OUT POLL_MS  -> "ready"; stdin "go END_NS"; loop; "done N"
//   node bench.js hold LOCK                            -> "held"; then sleeps until killed
//   node bench.js wait LOCK TIMEOUT_S POLL_MS          -> "ready"; "acquired MONO_NS" or "timeout"
//
// Times are CLOCK_MONOTONIC nanoseconds (process.hrtime.bigint), as in the
// Go and Python workers. The lock path LOCK is proper-lockfile's lock
// directory itself (lockfilePath); realpath is off so that nothing else
// needs to exist. stale and update are proper-lockfile's minimums (2000 ms,
// 1000 ms): its fastest crash recovery.

const fs = require('fs');
const lockfile = require('proper-lockfile');

const mono = () => process.hrtime.bigint();

function opts(lock, pollMs) {
    const o = { realpath: false, lockfilePath: lock, stale: 2000, update: 1000 };
    if (pollMs !== undefined) {
        // Retry for ever, at a fixed interval: proper-lockfile's default is
        // not to wait at all (retries: 0), and the retry module's default
        // backoff starts at 1 s.
        o.retries = { forever: true, factor: 1, minTimeout: pollMs, maxTimeout: pollMs, randomize: false };
    }
    return o;
}

async function uncontended(lock, batches, ops) {
    const o = opts(lock);
    for (let i = 0; i < 50; i++) {
        const release = await lockfile.lock(lock, o);
        await release();
    }
    for (let b = 0; b < batches; b++) {
        const t0 = mono();
        for (let i = 0; i < ops; i++) {
            const release = await lockfile.lock(lock, o);
            await release();
        }
        const dt = Number(mono() - t0);
        process.stdout.write(`ns ${dt / ops}\n`);
    }
}

function readLine() {
    return new Promise((resolve) => {
        let buf = '';
        const on = (chunk) => {
            buf += chunk;
            const i = buf.indexOf('\n');
            if (i >= 0) {
                process.stdin.off('data', on);
                process.stdin.pause();
                resolve(buf.slice(0, i));
            }
        };
        process.stdin.setEncoding('utf8');
        process.stdin.on('data', on);
    });
}

async function contend(lock, counter, id, out, pollMs) {
    const o = opts(lock, pollMs);
    process.stdout.write('ready\n');
    const line = await readLine();
    const end = BigInt(line.split(' ')[1]);
    const recs = [];
    while (mono() < end) {
        const release = await lockfile.lock(lock, o);
        const acq = mono();
        const [n] = fs.readFileSync(counter, 'utf8').split(' ');
        const seq = Number(n) + 1;
        // In place, fixed width, no truncation (see writeCounter in worker.go).
        const fd = fs.openSync(counter, 'r+');
        fs.writeSync(fd, `${String(seq).padStart(20, '0')} ${String(id).padEnd(8)}\n`, 0);
        fs.closeSync(fd);
        const rel = mono();
        await release();
        recs.push(`${seq} ${acq} ${rel}`);
    }
    fs.writeFileSync(out, recs.join('\n') + (recs.length ? '\n' : ''));
    process.stdout.write(`done ${recs.length}\n`);
}

async function hold(lock) {
    await lockfile.lock(lock, opts(lock));
    process.stdout.write('held\n');
    setInterval(() => {}, 1 << 30);
}

async function wait(lock, timeoutS, pollMs) {
    const o = opts(lock, pollMs);
    process.stdout.write('ready\n');
    const timer = setTimeout(() => {
        process.stdout.write('timeout\n');
        process.exit(0);
    }, timeoutS * 1000);
    await lockfile.lock(lock, o);
    const t = mono();
    clearTimeout(timer);
    process.stdout.write(`acquired ${t}\n`);
    process.exit(0);
}

async function main() {
    const [mode, ...a] = process.argv.slice(2);
    switch (mode) {
    case 'uncontended': return uncontended(a[0], Number(a[1]), Number(a[2]));
    case 'contend': return contend(a[0], a[1], a[2], a[3], Number(a[4]));
    case 'hold': return hold(a[0]);
    case 'wait': return wait(a[0], Number(a[1]), Number(a[2]));
    default: throw new Error(`unknown mode ${mode}`);
    }
}

main().catch((e) => {
    process.stderr.write(`${e.stack || e}\n`);
    process.exit(1);
});
