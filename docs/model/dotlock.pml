/*
 * dotlock.pml: the dotlock lock protocol (docs/PROTOCOL.md,
 * internal/lockcore, acquire.go to release.go) as a Promela model for spin.
 * README.md beside this file says what is modelled and what abstracted;
 * labels carry the Go step names (A1..A6, B1..B6, H1..H3, R1..R3).
 *
 * Bounds (spin -DNAME=value): N processes (2 or 3), ROUNDS holds each,
 * STALE ticks of lease, GRACE ticks for empty records, MAXCRASH crashes,
 * MAXPAUSE pauses, MAXLOST lost create replies, MAXBEATS heartbeats a hold,
 * MAXRACE guard races (see below).
 *
 * Mutants (each must make spin fail; .ci/check-model checks that they do):
 *   BUG_NO_VERIFY        A6 trusts the create: no read-back of the record
 *   BUG_NO_A5            A6 does not wait for the breaker guard to clear
 *   BUG_UNGUARDED_BREAK  B3 acts without re-reading the path under the guard
 *   BUG_NO_H3            a lapsed heartbeat is not run under the guard (not a
 *                        mutant since the H2 deadline fix: such a beat never
 *                        counts, so it is safe; H3 is what lets it count)
 *   BUG_LAST_PLUS0       A3 reuses P.last's token instead of adding one
 *   BUG_NO_LEASE         a remote holder's lease never lapses (liveness)
 * ORIG_LOSS: H1 and R1 call a hold lost at once when its record is not at
 * P, rather than deciding under the guard (a guard holder may have it
 * aside for a moment, to put it back: a false loss, not a safety bug).
 * ORIG_BEAT, ORIG_REL, ORIG_GUARD model lock.go as it was before the bugs
 * this model found were fixed (H2 and R1 trusted a clock read taken before
 * them; B1 did not verify its guard, and B2 never judged a guard whose
 * holder lives on this host by its lease); see README.md.
 * MAXRACE bounds guardStale renames that move another guard than judged.
 * PAUSE_IN_WINDOWS lets a process pause inside the windows that P1 names as
 * its limit (a pause longer than the lease between the last clock check
 * and the rename it justifies): spin then shows that limit.
 */

#ifndef N
#define N 2
#endif
#define MAXN 3
#ifndef ROUNDS
#define ROUNDS 1
#endif
#ifndef STALE
#define STALE 2            /* StaleAfter, in ticks */
#endif
#define HALF (STALE/2)     /* lapsed: more than StaleAfter/2 since the last proof */
#ifndef GRACE
#define GRACE 1
#endif
#define GLEASE (4*STALE)   /* a remote breaker guard's lease */
#define GDEAD (GLEASE/2)   /* a breaker acts only within half of it */
#ifndef MAXCRASH
#define MAXCRASH 1
#endif
#ifndef MAXPAUSE
#define MAXPAUSE 1
#endif
#ifndef MAXLOST
#define MAXLOST 1
#endif
#ifndef MAXRACE
#define MAXRACE 255        /* liveness runs bound it: see README.md */
#endif
#ifndef MAXBEATS
#define MAXBEATS 2
#endif

/* A file: f is its identity (a record's UUID; 0: no file), w whether the
 * record is written (an entry is created empty, A1, and written, A4), tok
 * the fencing token, hb the heartbeat counter. Byte-for-byte equality of
 * records is SAME: tok follows from f once written. */
typedef Rec { byte f; bit w; byte tok; byte hb };
#define SAME(a, b) (a.f == b.f && a.w == b.w && a.hb == b.hb)
#define COPY(a, b) a.f = b.f; a.w = b.w; a.tok = b.tok; a.hb = b.hb
#define CLR(a) a.f = 0; a.w = 0; a.tok = 0; a.hb = 0

Rec P;        /* the lock path */
Rec L;        /* P.last */
Rec G;        /* P.break, the breaker guard */
Rec T[MAXN];  /* each process's P.gone.<id> (one at a time suffices) */

/* Identities name their creator, and are unique among all that anything
 * refers to (a file, an observation, a victim): an identity nothing refers
 * to any more can be used again without anyone telling. */
#define OWNER(f) (((f) - 1) % MAXN)
Rec Dr[MAXN], Vr[MAXN]; /* each process's record just read, and its victim */
#define D Dr[me]
#define V Vr[me]
#define REF3(a, x, f_) (a[0]x == f_ || a[1]x == f_ || a[2]x == f_)
#define REF(f_) (P.f == f_ || L.f == f_ || G.f == f_ || REF3(T, .f, f_) || REF3(obs, .f, f_) || \
	REF3(gobs, .f, f_) || REF3(myf, , f_) || REF3(myg, , f_) || REF3(Dr, .f, f_) || REF3(Vr, .f, f_))
inline newfid(res) {
	k = 0;
	do
	:: REF(1 + me + MAXN*k) -> k++
	:: else -> break
	od;
	assert(1 + me + MAXN*k < 250);
	res = 1 + me + MAXN*k;
	k = 0
}
/* Hosts: process 0 alone on host 0, the others share host 1. Same host:
 * judged by PID (dead iff crashed); other host: by lease. */
#define HOST(i) ((i) == 0 -> 0 : 1)

/* Per process (global so that the clock and the checks see them). */
bit crashed[MAXN], paused[MAXN], done[MAXN];
bit waitT[MAXN];     /* in a backoff: waits for the next tick */
bit inCS[MAXN];      /* holding, between heartbeats */
bit due[MAXN];       /* a heartbeat is due */
bit nopause[MAXN];   /* inside a P1-limit window (see PAUSE_IN_WINDOWS) */
bit holding[MAXN], lost[MAXN];
bit rel[MAXN];       /* in Unlock: the caller no longer uses the hold */
bit timing[MAXN];    /* opAge is in use */
byte myf[MAXN], mytok[MAXN], myg[MAXN];
Rec obs[MAXN];       /* ws.holder: the record at P as first seen ... */
byte oage[MAXN];     /* ... and ticks since */
Rec gobs[MAXN];      /* ws.guardObs */
byte goage[MAXN];
byte beatAge[MAXN];  /* ticks since lastBeat (the last proof of the hold) */
byte opAge[MAXN];    /* ticks since the `now` read at the start of complete / beat / release */
byte gage[MAXN];     /* ticks since this process took the guard */

byte crashes, pauses, lostBudget = MAXLOST;
byte races;          /* guardStale renames that moved another guard than judged */
byte maxTok;         /* largest token of any hold so far */
byte holds, lockErrs;

#define VALID(i) (holding[i] && !rel[i] && !lost[i] && !crashed[i] && beatAge[i] < STALE)
#define OTHERS_INVALID(me) ((me == 0 || !VALID(0)) && (me == 1 || !VALID(1)) && (me == 2 || !VALID(2)))
#define IDLE(i) (i >= N || done[i] || crashed[i] || paused[i] || waitT[i] || (inCS[i] && !due[i]))
#define ALLIDLE (IDLE(0) && IDLE(1) && IDLE(2))
#define FIN(i) (i >= N || done[i] || crashed[i])
#define ALLDONE (FIN(0) && FIN(1) && FIN(2))

#define SAT(x, m) if :: x < m -> x++ :: else fi

/* A write through an open file lands wherever that file is now. */
inline writeTo(fid, w_, tok_, hb_) {
	if
	:: P.f == fid -> P.w = w_; P.tok = tok_; P.hb = hb_
	:: L.f == fid -> L.w = w_; L.tok = tok_; L.hb = hb_
	:: G.f == fid -> G.w = w_; G.tok = tok_; G.hb = hb_
	:: T[0].f == fid -> T[0].w = w_; T[0].tok = tok_; T[0].hb = hb_
	:: T[1].f == fid -> T[1].w = w_; T[1].tok = tok_; T[1].hb = hb_
	:: T[2].f == fid -> T[2].w = w_; T[2].tok = tok_; T[2].hb = hb_
	:: else -> skip /* removed: the write goes nowhere */
	fi
}

/* judge (judge.go): v = 1 if the record D is stale. ob/age is the
 * observation (stale.Observation.See): age counts from the first sight of
 * these exact bytes. */
inline judge(R, ob, age, lease, guard, v) {
	if
	:: !R.w -> /* P5: empty, being written for the grace period */
		if :: !SAME(R, ob) -> COPY(ob, R); age = 0 :: else fi;
		v = (age >= GRACE)
	:: R.w && HOST(OWNER(R.f)) == HOST(me) -> /* same host: the PID check */
		v = crashed[OWNER(R.f)];
		if
#ifndef ORIG_GUARD
		:: !v && guard -> /* a live breaker acts only within GLEASE/2: a guard
			 * unchanged for GLEASE is an orphan (see B1v) */
			if :: !SAME(R, ob) -> COPY(ob, R); age = 0 :: else fi;
			v = (age >= lease)
#endif
		:: !v && !guard -> ob.f = 0; ob.w = 0; ob.hb = 0; age = 0
		:: else
		fi
	:: R.w && HOST(OWNER(R.f)) != HOST(me) -> /* remote: the lease (P9) */
		if :: !SAME(R, ob) -> COPY(ob, R); age = 0 :: else fi;
#ifdef BUG_NO_LEASE
		v = guard && (age >= lease);
#else
		v = (age >= lease)
#endif
	fi
}

/* The hold begins (A6, or B6 proved): P1 and P7 are checked here. */
inline takeHold() {
	holding[me] = 1; lost[me] = 0; beatAge[me] = opAge[me]; hbc = 0; beats = 0;
	assert(OTHERS_INVALID(me));   /* P1 within the lease */
	assert(mytok[me] > maxTok);   /* P7 */
	printf("MSC: p%d HOLD f%d tok%d\n", me, myf[me], mytok[me]);
	maxTok = mytok[me]; holds++;
	opAge[me] = 0; timing[me] = 0; q = 0;
	CLR(obs[me]); oage[me] = 0; CLR(gobs[me]); goage[me] = 0;
	inCS[me] = 1;
	goto CS
}

/* What withGuard runs, and what runs guardStale. */
#define W_BREAK 0
#define W_BEAT 1
#define W_REL 2
#define W_A5 3

active [N] proctype Proc() provided (!crashed[_pid] && !paused[_pid])
{
	byte me = _pid;
	byte round, q, t, hbc, beats;
	byte why;        /* withGuard's caller */
	bit v, gs;       /* judge's verdict; guardStale's result */
	bit guarded;     /* the current proof or release runs under the guard */
	bit gbusy;       /* the guard turned out not to be ours */
	bit brkErr, brkErr_; /* B4 failed with an error */
	bit took, late, proved; /* B6 made our entry; after the deadline; wrote it within */
	byte res;        /* fn's result: 0 ok, 1 lost, 2 come round again */
	byte k;

start:	/* Lock: a fresh wait state */
	if
	:: round == ROUNDS -> goto finish
	:: else
	fi;
	d_step { obs[me].f = 0; obs[me].w = 0; obs[me].hb = 0; oage[me] = 0;
		gobs[me].f = 0; gobs[me].w = 0; gobs[me].hb = 0; goage[me] = 0; q = 0 }

A1:	/* create the entry (O_EXCL) */
	atomic {
		if
		:: P.f == 0 ->
			newfid(myf[me]); P.f = myf[me]; P.w = 0; P.tok = 0; P.hb = 0;
			printf("MSC: p%d A1 create P f%d\n", me, P.f);
			if
			:: lostBudget > 0 -> lostBudget--; printf("MSC: p%d A1 reply lost\n", me); myf[me] = 0; goto A1lost /* P6: created, but the reply is lost */
			:: true -> goto A3
			fi
		:: else -> goto A2 /* EEXIST: held */
		fi
	};
A1lost:	/* maybeHeld: Lstat(P) */
	if
	:: P.f != 0 -> goto A2
	:: else -> goto lockFailed
	fi;

A2:	/* inspect: read the record at P and judge it */
	atomic {
		COPY(D, P);
		if
		:: D.f == 0 -> goto retryNow
		:: else -> judge(D, obs[me], oage[me], STALE, 0, v);
			if
			:: v -> printf("MSC: p%d A2 stale f%d hb%d\n", me, D.f, D.hb); COPY(V, D); CLR(D); v = 0; why = W_BREAK; goto B1
			:: else -> CLR(D); goto backoff
			fi
		fi
	};

A3:	/* complete: now (the hold's first lastBeat); read P.last */
	atomic {
		opAge[me] = 0; timing[me] = 1;
		if
		:: L.f == 0 -> t = 0
		:: L.f != 0 && L.w -> t = L.tok; printf("MSC: p%d A3 last tok%d\n", me, t)
		:: L.f != 0 && !L.w -> goto A3abandon /* unreadable P.last: never a smaller token */
		fi
	};
A4:	/* write the record (into our file, wherever it is now) */
	atomic {
#ifdef BUG_LAST_PLUS0
		mytok[me] = (t == 0 -> 1 : t);
#else
		mytok[me] = t + 1;
#endif
		writeTo(myf[me], 1, mytok[me], 0);
		t = 0
	};
A5:	/* wait until no breaker guard exists */
#ifndef BUG_NO_A5
	atomic {
		if
		:: G.f == 0 -> goto A6
		:: else -> why = W_A5; goto B2
		fi
	};
#endif
A6:	/* verify: only our record at P is a hold */
	atomic {
#ifdef BUG_NO_VERIFY
		if :: true ->
#else
		if
		:: P.f == myf[me] ->
#endif
			printf("MSC: p%d A6 verified\n", me);
			takeHold()
		:: else -> opAge[me] = 0; timing[me] = 0; goto retryNow /* displaced while undecided */
		fi
	};

A3abandon: /* abandon(nil): remove our entry if it is still empty */
	atomic { opAge[me] = 0; timing[me] = 0; if :: P.f == 0 -> goto backoff :: else -> COPY(T[me], P); CLR(P) fi };
	atomic { if :: T[me].w -> COPY(P, T[me]) :: else fi; CLR(T[me]); goto backoff };

CS:	/* holding: heartbeat when due, or Unlock */
	do
	:: due[me] && !lost[me] && beats < MAXBEATS -> inCS[me] = 0; due[me] = 0; goto H
	:: inCS[me] = 0; due[me] = 0; goto REL
	od;

H:	/* beat: now; lapsed? */
	atomic {
		beats++; opAge[me] = 0; timing[me] = 1;
		CLR(gobs[me]); goage[me] = 0; /* a fresh wait state */
#ifdef BUG_NO_H3
		if :: true ->
#else
		if
		:: beatAge[me] <= HALF ->
#endif
			guarded = 0; goto H1
		:: else -> why = W_BEAT; goto B1 /* H3: prove under the guard */
		fi
	};
H1:	/* is the record at P still ours? */
	if
#ifndef ORIG_LOSS
	:: P.f != myf[me] && !guarded -> /* H1g: decide under the guard (a guard
		 * holder may have it aside, to put it back) */
		why = W_BEAT; goto B1
	:: P.f != myf[me] && guarded -> printf("MSC: p%d H1 lost\n", me); res = 1; goto Hend
#else
	:: P.f != myf[me] -> printf("MSC: p%d H1 lost\n", me); res = 1; goto Hend
#endif
	:: else
	fi;
H2:	/* write the next heartbeat through our own file */
	atomic {
		hbc++;
		writeTo(myf[me], 1, mytok[me], hbc);
		printf("MSC: p%d H2 beat hb%d (P f%d hb%d)\n", me, hbc, P.f, P.hb);
		res = 0;
#ifdef ORIG_BEAT
		beatAge[me] = opAge[me];
#else
		/* the proof counts only if it ended within its deadline */
		if
		:: (guarded && gage[me] <= GDEAD) || (!guarded && beatAge[me] <= HALF) ->
			beatAge[me] = opAge[me]
		:: else
		fi;
#endif
		assert(!VALID(me) || OTHERS_INVALID(me))
	};
Hend:
	if
	:: guarded -> goto B5
	:: else
	fi;
Hdone:
	atomic {
		if
		:: res == 1 -> lost[me] = 1
		:: else
		fi;
		res = 0; opAge[me] = 0; timing[me] = 0; CLR(gobs[me]); goage[me] = 0;
		inCS[me] = 1;
		goto CS
	};

REL:	/* Unlock: now; lapsed? */
	atomic {
		rel[me] = 1; hbc = 0; beats = 0;
		CLR(gobs[me]); goage[me] = 0;
		if
		:: lost[me] -> goto relDone
		:: else
		fi;
		if
		:: beatAge[me] <= HALF -> guarded = 0; goto R1
		:: else -> why = W_REL; goto B1 /* R3 */
		fi
	};
R1:	/* the record at P must be ours */
	atomic {
		if
#ifndef ORIG_LOSS
		:: P.f != myf[me] && !guarded -> /* R1g: decide under the guard */
			nopause[me] = 0; why = W_REL; goto B1
		:: P.f != myf[me] && guarded -> nopause[me] = 0; res = 1; goto Rend
#else
		:: P.f != myf[me] -> nopause[me] = 0; res = 1; goto Rend
#endif
		:: else
		fi;
#ifndef ORIG_REL
		/* the release acts only within its deadline */
		if
		:: (guarded && gage[me] > GDEAD) || (!guarded && beatAge[me] > HALF) -> res = 2; goto Rend
		:: else
		fi;
#endif
		nopause[me] = 1
	};
R2:	/* retire it to P.last: remove P.last, rename P to P.last */
	L.f = 0;
	atomic {
		nopause[me] = 0;
		if
		:: P.f == 0 -> res = 1
		:: else -> printf("MSC: p%d R2 release f%d tok%d -> P.last\n", me, P.f, P.tok);
			assert(P.f == myf[me]); /* P8 */ COPY(L, P); P.f = 0; res = 0
		fi
	};
Rend:
	if
	:: guarded -> goto B5
	:: else
	fi;
Rdone:
	if
	:: res == 2 -> why = W_REL; goto B1 /* lapsed meanwhile: under the guard */
	:: else
	fi;
relDone:
	atomic {
		round++; res = 0; holding[me] = 0; rel[me] = 0; lost[me] = 0; beatAge[me] = 0; myf[me] = 0; mytok[me] = 0;
		CLR(gobs[me]); goage[me] = 0;
		goto start
	};

/* withGuard (B1, B2, B5) around breakStale's fn (B3, B4), prove, release */
B1:	/* create the guard */
	atomic {
		if
		:: G.f == 0 ->
			newfid(myg[me]); G.f = myg[me]; G.w = 0; G.tok = 0; G.hb = 0; gage[me] = 0;
			printf("MSC: p%d B1 guard g%d (for %d)\n", me, G.f, why);
			if
			:: lostBudget > 0 -> lostBudget--; myg[me] = 0; goto B1lost
			:: true
			fi
		:: else -> goto B2 /* held: judge the guard */
		fi
	};
B1w:	/* write the breaker record */
	atomic {
		writeTo(myg[me], 1, 0, 0);
		guarded = 1
	};
#ifndef ORIG_GUARD
B1v:	/* verify: the guard at P.break is the record we wrote (it may have
	 * been broken as an empty record, P5, while we were paused) */
	atomic {
		if
		:: G.f == myg[me] && G.w -> skip
		:: else -> printf("MSC: p%d B1 guard g%d not ours\n", me, myg[me]); gbusy = 1; goto B5
		fi
	};
#endif
	if
	:: why == W_BREAK -> goto B3
	:: why == W_BEAT -> goto H1
	:: why == W_REL -> goto R1
	fi;
B1lost:	/* createExcl: Lstat(P.break) */
	if
	:: G.f != 0 -> goto B2
	:: else -> goto guardFailed
	fi;

B2:	/* guardStale: judge the guard's record and break it if stale */
	atomic {
		COPY(D, G);
		if
		:: D.f == 0 -> gs = 1; goto B2end
		:: else -> judge(D, gobs[me], goage[me], GLEASE, 1, v);
			if
			:: v && races >= MAXRACE -> /* no more races: the rename follows at once */
				printf("MSC: p%d B2 break guard g%d\n", me, G.f); COPY(T[me], G); G.f = 0; goto B2chk
			:: v && races < MAXRACE -> skip
			:: else -> printf("MSC: p%d B2 guard g%d w%d held (for %d)\n", me, D.f, D.w, why); gs = 0; goto B2end
			fi
		fi
	};
	atomic {
		if
		:: G.f == 0 -> gs = 0; goto B2end
		:: else -> printf("MSC: p%d B2 break guard g%d\n", me, G.f);
			if :: G.f != D.f -> races++ :: else fi;
			COPY(T[me], G); G.f = 0
		fi
	};
B2chk:
	atomic {
		if
		:: SAME(T[me], D) -> gs = 1
		:: else -> COPY(G, T[me]); gs = 0
		fi;
		T[me].f = 0
	};
B2end:
	CLR(D);
	if
	:: why == W_A5 && gs -> goto A5
	:: why == W_A5 && !gs -> waitT[me] = 1; (waitT[me] == 0); goto A5
	:: else
	fi;
guardBusy: /* errGuardBusy */
	if
	:: why == W_BREAK -> goto retryNow
	:: why == W_BEAT -> res = 0; goto Hdone /* try at the next beat */
	:: why == W_REL -> waitT[me] = 1; (waitT[me] == 0); goto B1
	fi;

B3:	/* under the guard: P must still be exactly V, and we within the deadline */
	atomic {
		brkErr = 0;
#ifdef BUG_UNGUARDED_BREAK
		if :: P.f == 0 -> goto B5 :: else -> COPY(V, P) fi;
#endif
		if
		:: P.f == 0 -> goto B5
		:: P.f != 0 && (!SAME(P, V) || gage[me] > GDEAD) ->
			printf("MSC: p%d B3 no act (P f%d hb%d, V f%d hb%d, gage %d)\n", me, P.f, P.hb, V.f, V.hb, gage[me]); goto B5
		:: else -> nopause[me] = 1
		fi;
		if
		:: V.w -> skip
		:: else -> goto B4tmp
		fi
	};
B4:	/* Retire(keep): remove P.last, rename P to P.last, check what moved */
	L.f = 0;
	atomic {
		nopause[me] = 0;
		if
		:: P.f == 0 -> goto B5
		:: else -> printf("MSC: p%d B4 P f%d tok%d -> P.last\n", me, P.f, P.tok); COPY(L, P); P.f = 0
		fi
	};
	atomic {
		if
		:: L.f == 0 -> brkErr = 1; goto B5
		:: L.f != 0 && SAME(L, V) ->
			assert(!(VALID(OWNER(V.f)) && myf[OWNER(V.f)] == V.f)); /* P3: never a live hold */
			goto B6
		:: else
		fi
	};
	atomic { /* not V: put it back */
		if
		:: L.f == 0 -> brkErr = 1
		:: else -> printf("MSC: p%d B4 put back f%d\n", me, L.f); COPY(P, L); L.f = 0
		fi;
		goto B5
	};
B6:	/* take over: only within the guard's deadline (the clock read before
	 * the create) */
	atomic {
		if
		:: gage[me] <= GDEAD -> skip
		:: else -> goto B5
		fi
	};
B6c:	/* create P (a lost reply leaves the entry to be judged as any
	 * other's); the clock read after it: a create that returned past the
	 * deadline is A1's entry, A3 on */
	atomic {
		if
		:: P.f == 0 ->
			opAge[me] = 0; timing[me] = 1;
			newfid(myf[me]); P.f = myf[me]; P.w = 0; P.tok = 0; P.hb = 0;
			printf("MSC: p%d B6 take P f%d\n", me, P.f);
			if
			:: lostBudget > 0 -> lostBudget--; printf("MSC: p%d B6 reply lost\n", me); myf[me] = 0
			:: true -> took = 1; late = (gage[me] > GDEAD)
			fi
		:: else -> skip /* taken meanwhile: A1 does not wait for the guard */
		fi
	};
B6w:	/* write: the token after V's, which B4 published; proved if the
	 * write ended within the deadline */
	atomic {
		if
		:: took && !late ->
			mytok[me] = V.tok + 1;
			writeTo(myf[me], 1, mytok[me], 0);
			proved = (gage[me] <= GDEAD)
		:: else
		fi;
		goto B5
	};
B4tmp:	/* Retire(!keep): rename P to P.gone.<id>, check, remove or put back */
	atomic {
		nopause[me] = 0;
		if
		:: P.f == 0 -> goto B5
		:: else -> printf("MSC: p%d B4 P f%d -> gone\n", me, P.f); COPY(T[me], P); P.f = 0
		fi
	};
	atomic {
		if
		:: SAME(T[me], V) -> T[me].f = 0; goto B5
		:: else
		fi
	};
	atomic { COPY(P, T[me]); T[me].f = 0 };

B5:	/* release the guard if it is still ours */
	atomic { if :: G.f == 0 -> goto B5end :: else -> COPY(T[me], G); G.f = 0 fi };
	atomic {
		if
		:: T[me].f == myg[me] && T[me].w -> skip
		:: else -> COPY(G, T[me])
		fi;
		T[me].f = 0
	};
B5end:
	atomic {
		myg[me] = 0; guarded = 0; gage[me] = 0; CLR(V); brkErr_ = brkErr; brkErr = 0;
		if
		:: gbusy -> gbusy = 0; goto guardBusy
		:: !gbusy && why == W_BREAK && took && late -> took = 0; late = 0; goto A3 /* as A1's entry */
		:: !gbusy && why == W_BREAK && took && !late && proved -> took = 0; proved = 0; printf("MSC: p%d B6 proved\n", me); takeHold()
		:: !gbusy && why == W_BREAK && took && !late && !proved -> took = 0; goto A5 /* verify as A1's entry */
		:: !gbusy && why == W_BREAK && !took && brkErr_ -> brkErr_ = 0; goto lockFailed
		:: !gbusy && why == W_BREAK && !took && !brkErr_ -> goto retryNow
		:: !gbusy && why == W_BEAT -> goto Hdone
		:: !gbusy && why == W_REL -> goto Rdone
		fi
	};

guardFailed: /* no guard and no error to retry on */
	if
	:: why == W_BREAK -> goto lockFailed
	:: why == W_BEAT -> res = 1; goto Hdone /* beat's error: the hold counts as lost */
	:: why == W_REL -> goto relDone /* Unlock returns the error */
	fi;

retryNow: /* ws.pause(retryNow): two quick retries, then a backoff */
	if
	:: q < 2 -> q++; goto A1
	:: else -> q = 0
	fi;
backoff:
	waitT[me] = 1;
	(waitT[me] == 0);
	goto A1;

lockFailed: /* Lock returned an error */
	atomic { lockErrs++; round++; myf[me] = 0; opAge[me] = 0; timing[me] = 0; goto start };

finish:
	done[me] = 1;
end_done:
	skip
}

/* The clock: ticks only while every process is idle (waiting, holding
 * between heartbeats, paused, crashed or done): filesystem steps take no
 * time unless their process is paused. */
active proctype Tick()
{
	byte i;
end_tick:
	do
	:: d_step {
		ALLIDLE && !ALLDONE ->
		for (i : 0 .. N-1) {
			if :: obs[i].f != 0 -> SAT(oage[i], STALE) :: else fi;
			if :: gobs[i].f != 0 -> SAT(goage[i], GLEASE) :: else fi;
			if :: holding[i] -> SAT(beatAge[i], STALE) :: else fi;
			if :: timing[i] -> SAT(opAge[i], STALE) :: else fi;
			if :: myg[i] != 0 -> SAT(gage[i], GDEAD+1) :: else fi;
			waitT[i] = 0;
			if :: inCS[i] -> due[i] = 1 :: else fi
		};
		i = 0;
		printf("MSC: tick\n")
	}
	:: ALLDONE -> break
	od
}

#ifdef PAUSE_IN_WINDOWS
#define CANPAUSE(i) (i < N && !done[i] && !crashed[i] && !paused[i])
#else
#define CANPAUSE(i) (i < N && !done[i] && !crashed[i] && !paused[i] && !nopause[i])
#endif
#define CANCRASH(i) (i < N && !done[i] && !crashed[i])

/* The environment: pauses (SIGSTOP, a VM pause, a stalled filesystem
 * call) and crashes (SIGKILL: the process stops; its files stay). */
active proctype Env()
{
end_env:
	do
	:: atomic { pauses < MAXPAUSE && CANPAUSE(0) -> paused[0] = 1; pauses++; printf("MSC: p0 paused\n") }
	:: atomic { pauses < MAXPAUSE && CANPAUSE(1) -> paused[1] = 1; pauses++; printf("MSC: p1 paused\n") }
	:: atomic { pauses < MAXPAUSE && CANPAUSE(2) -> paused[2] = 1; pauses++; printf("MSC: p2 paused\n") }
	:: atomic { paused[0] -> paused[0] = 0; printf("MSC: p0 resumes\n") }
	:: atomic { paused[1] -> paused[1] = 0; printf("MSC: p1 resumes\n") }
	:: atomic { paused[2] -> paused[2] = 0; printf("MSC: p2 resumes\n") }
	:: atomic { crashes < MAXCRASH && CANCRASH(0) -> crashed[0] = 1; paused[0] = 0; crashes++; printf("MSC: p0 crashes\n") }
	:: atomic { crashes < MAXCRASH && CANCRASH(1) -> crashed[1] = 1; paused[1] = 0; crashes++; printf("MSC: p1 crashes\n") }
	:: atomic { crashes < MAXCRASH && CANCRASH(2) -> crashed[2] = 1; paused[2] = 0; crashes++; printf("MSC: p2 crashes\n") }
	od
}

/* Liveness: every process that does not crash completes its rounds (each
 * Lock call ends, with a hold or an error): no lock is held forever by a
 * dead holder, a dead breaker's guard, or an abandoned entry. */
ltl live { <> ALLDONE }
