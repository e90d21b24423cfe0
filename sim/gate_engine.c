/* rcm_gen's cycle-based gate-level simulator: the netlist is data (see gate_program.py). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef int32_t i32;
typedef uint64_t u64;
enum { PASS_LIMIT = 1000, STRIDE = 8 };

static i32 NV, NB, NEXT, NTT, NFO, NCONE, NG, NFC, NIN, NOUT, CLK, NMAC, NMD, BEFORE, NFB, NM;
static i32 *code, *ext, *fo_off, *fo, *cone, *grp, *fcode, *fb_start, *IN, *OUT, *md;
static uint8_t *tt, *v, *pv, *flag, *last;
static u64 *always, *dmask, *dsum, *fmask;
static i32 NSUM, NS64, *chg, nchg, lo, again, last_changed;

typedef struct {
  i32 words, bits, mbits, n[9], *pin[9];
  uint8_t *mem, *din;
  u64 a0, a1, mask;
  int cs0, we0, cs1;
} Macro;
static Macro *mac;
static uint32_t *rise, *fall, *acc;
static i32 NACC;

static void *load(FILE *f, size_t n, size_t size) {
  void *p = calloc(n ? n : 1, size);
  if (!p || fread(p, size, n, f) != n) { fprintf(stderr, "bad simulation data\n"); exit(2); }
  return p;
}

static inline void touch(i32 k) {
  if (!flag[k]) { flag[k] = 1; chg[nchg++] = k; }
}

/* reader r: a node of the settle loop (block r / 64) or a flip-flop */
static inline void mark(i32 r) {
  if (r < NS64) {
    i32 b = r >> 6;
    dmask[b] |= (u64)1 << (r & 63);
    dsum[b >> 6] |= (u64)1 << (b & 63);
    if (b < lo) lo = b;
  } else {
    r -= NS64;
    fmask[r >> 6] |= (u64)1 << (r & 63);
  }
}

/* a change from outside the settle loop: every reader of k */
static inline void setx(i32 k, uint8_t x) {
  if (v[k] == x) return;
  v[k] = x;
  touch(k);
  for (i32 e = fo_off[k]; e < fo_off[k + 1]; e++) mark(fo[e]);
}

/* a node: output, truth table << 4 | input count, four inputs, where four more are */
static inline uint8_t lookup(const i32 *p) {
  uint32_t ttn = (uint32_t)p[1];
  uint32_t idx = (uint32_t)v[p[2]] | (uint32_t)v[p[3]] << 1 | (uint32_t)v[p[4]] << 2 |
                 (uint32_t)v[p[5]] << 3;
  if ((ttn & 15) > 4) {
    const i32 *x = ext + p[6];
    idx |= (uint32_t)v[x[0]] << 4 | (uint32_t)v[x[1]] << 5 | (uint32_t)v[x[2]] << 6 |
           (uint32_t)v[x[3]] << 7;
  }
  return tt[(ttn >> 4) + idx];
}

/* the nodes of block b in mask, in order; a change marks its readers */
static void eval_block(i32 b, u64 mask) {
  const i32 *base = code + (size_t)b * 64 * STRIDE;
  const i32 first = b << 6;
  while (mask) {
    int s = __builtin_ctzll(mask);
    mask &= mask - 1;
    const i32 *p = base + s * STRIDE;
    i32 out = p[0];
    uint8_t x = lookup(p);
    if (x == v[out]) continue;
    v[out] = x;
    touch(out);
    last_changed = out;
    for (i32 e = fo_off[out]; e < fo_off[out + 1]; e++) {
      i32 r = fo[e];
      if (r >= first && r < first + 64 && (r & 63) > s) {
        mask |= (u64)1 << (r & 63);
      } else {
        mark(r);
        if (r <= first + s) again = 1;
      }
    }
  }
}

/* evaluate marked nodes in order until none is left */
static void settle(void) {
  for (int pass = 0;; pass++) {
    i32 w = lo >> 6;
    lo = NB;
    again = 0;
    for (; w < NSUM; w++) {
      /* blocks marked behind the one evaluated wait for the next pass */
      for (int from = 0; from < 64;) {
        u64 bits = dsum[w] & (~(u64)0 << from);
        if (!bits) break;
        int j = __builtin_ctzll(bits);
        dsum[w] &= ~((u64)1 << j);
        from = j + 1;
        i32 b = (w << 6) | j;
        u64 mask = dmask[b];
        dmask[b] = 0;
        if (mask) eval_block(b, mask);
      }
    }
    if (!again) { lo = NB; return; }
    if (pass >= PASS_LIMIT) {
      fprintf(stderr, "unsettled %d\n", (int)last_changed);
      exit(4);
    }
  }
}

/* the clock logic, from the clock port to the flip-flops' clock pins */
static void clock_logic(void) {
  for (i32 i = 0; i < NCONE; i++) {
    const i32 *p = cone + (size_t)i * STRIDE;
    setx(p[0], lookup(p));
  }
}

/* flip-flops whose clock net made its active edge take their data: those whose inputs
   changed since they last did (or whose data taken twice is not taken once) */
static int capture(void) {
  int any = 0;
  for (i32 g = 0; g < NG; g++) {
    const i32 *gr = grp + 4 * g;
    uint8_t c = v[gr[0]];
    if (c == last[g]) continue;
    last[g] = c;
    if (c != gr[1]) continue;
    any = 1;
    for (i32 q = gr[2]; q < gr[3]; q++) {
      u64 mask = fmask[q] | always[q];
      fmask[q] = 0;
      const i32 *base = fcode + (size_t)fb_start[q] * STRIDE;
      while (mask) {
        int s = __builtin_ctzll(mask);
        mask &= mask - 1;
        const i32 *p = base + s * STRIDE;
        setx(p[0], lookup(p));
      }
    }
  }
  return any;
}

static void settle_all(void) {
  for (int i = 0;; i++) {
    settle();
    if (!capture()) return;
    if (i >= PASS_LIMIT) {
      fprintf(stderr, "unsettled %d\n", (int)last_changed);
      exit(4);
    }
  }
}

/* the values after a settle against those after the previous one */
static void count(void) {
  for (i32 i = 0; i < nchg; i++) {
    i32 k = chg[i];
    flag[k] = 0;
    if (v[k] != pv[k]) {
      if (v[k]) rise[k]++; else fall[k]++;
      pv[k] = v[k];
    }
  }
  nchg = 0;
}

static u64 word(const i32 *pins, i32 n) {
  u64 w = 0;
  for (i32 b = 0; b < n && b < 64; b++) w |= (u64)v[pins[b]] << b;
  return w;
}

/* SRAM macros: inputs sampled at the rising edge ... */
static void macro_rise(void) {
  for (i32 n = 0; n < NMAC; n++) {
    Macro *m = mac + n;
    m->cs0 = !v[m->pin[0][0]];
    m->we0 = !v[m->pin[1][0]];
    m->cs1 = !v[m->pin[6][0]];
    m->a0 = word(m->pin[3], m->n[3]);
    m->a1 = word(m->pin[7], m->n[7]);
    m->mask = word(m->pin[2], m->n[2]);
    for (i32 b = 0; b < m->bits; b++) m->din[b] = v[m->pin[4][b]];
    if (m->cs0) acc[3 * n + (m->we0 ? 1 : 0)]++;
    if (m->cs1) acc[3 * n + 2]++;
  }
}

/* ... reads and writes complete at the falling edge */
static void macro_fall(void) {
  for (i32 n = 0; n < NMAC; n++) {
    Macro *m = mac + n;
    if (m->cs0 && m->a0 < (u64)m->words) {
      uint8_t *row = m->mem + m->a0 * m->bits;
      if (m->we0) {
        for (i32 b = 0; b < m->bits; b++)
          if ((m->mask >> (b / m->mbits)) & 1) row[b] = m->din[b];
      } else {
        for (i32 b = 0; b < m->bits; b++) setx(m->pin[5][b], row[b]);
      }
    }
    if (m->cs1 && m->a1 < (u64)m->words && !(m->cs0 && m->we0 && m->a0 == m->a1)) {
      uint8_t *row = m->mem + m->a1 * m->bits;
      for (i32 b = 0; b < m->bits; b++) setx(m->pin[8][b], row[b]);
    }
  }
}

static void sample(uint8_t *out, FILE *fo_) {
  for (i32 i = 0; i < NOUT; i++) out[i] = v[OUT[i]];
  fwrite(out, 1, NOUT, fo_);
}

static void dump(const char *dir, long start) {
  char path[4096];
  snprintf(path, sizeof path, "%s/win_%ld.bin", dir, start);
  FILE *f = fopen(path, "wb");
  if (!f) { perror(path); exit(3); }
  fwrite(rise, sizeof rise[0], NV, f);
  fwrite(fall, sizeof fall[0], NV, f);
  fwrite(acc, sizeof acc[0], NACC, f);
  fclose(f);
}

int main(int argc, char **argv) {
  if (argc != 6) { fprintf(stderr, "usage: sim DATA STIM WINDOWS OUT DIR\n"); return 2; }
  FILE *fd = fopen(argv[1], "rb");
  if (!fd) { perror(argv[1]); return 2; }
  i32 h[17];
  if (fread(h, sizeof h[0], 17, fd) != 17 || h[0] != 0x52434D32) {
    fprintf(stderr, "bad simulation data\n");
    return 2;
  }
  NV = h[1]; NB = h[2]; NEXT = h[3]; NTT = h[4]; NFO = h[5]; NCONE = h[6]; NG = h[7];
  NFC = h[8]; NIN = h[9]; NOUT = h[10]; CLK = h[11]; NMAC = h[12]; NMD = h[13];
  BEFORE = h[14]; NFB = h[15]; NM = h[16];
  code = load(fd, (size_t)NB * 64 * STRIDE, 4); ext = load(fd, NEXT, 4);
  fo_off = load(fd, NV + 1, 4); fo = load(fd, NFO, 4);
  cone = load(fd, (size_t)NCONE * STRIDE, 4); grp = load(fd, 4 * NG, 4);
  fcode = load(fd, (size_t)NFC * STRIDE, 4); fb_start = load(fd, NFB + 1, 4);
  IN = load(fd, NIN, 4); OUT = load(fd, NOUT, 4); md = load(fd, NMD, 4);
  tt = load(fd, NTT, 1); always = load(fd, NFB ? NFB : 1, 8);
  fclose(fd);
  NSUM = (NB + 63) / 64;
  NS64 = NB * 64;
  v = calloc(NV, 1); pv = calloc(NV, 1); flag = calloc(NV, 1); last = calloc(NG + 1, 1);
  chg = calloc(NV, 4); rise = calloc(NV, 4); fall = calloc(NV, 4);
  dmask = calloc(NB, 8); dsum = calloc(NSUM + 1, 8); fmask = calloc(NFB + 1, 8);
  NACC = NMAC ? 3 * NMAC : 1;
  acc = calloc(NACC, 4);
  mac = calloc(NMAC + 1, sizeof *mac);
  if (!v || !pv || !flag || !last || !chg || !rise || !fall || !dmask || !dsum || !fmask ||
      !acc || !mac) {
    fprintf(stderr, "out of memory\n");
    return 2;
  }
  for (i32 n = 0, at = 0; n < NMAC; n++) {
    Macro *m = mac + n;
    m->words = md[at++]; m->bits = md[at++]; m->mbits = md[at++];
    for (int r = 0; r < 9; r++) { m->n[r] = md[at++]; m->pin[r] = md + at; at += m->n[r]; }
    m->mem = calloc((size_t)m->words * m->bits, 1);
    m->din = calloc(m->bits, 1);
    if (m->mbits < 1) m->mbits = m->bits;
  }

  FILE *fs = fopen(argv[2], "rb"), *fw = fopen(argv[3], "r"), *fo_ = fopen(argv[4], "wb");
  if (!fs || !fw || !fo_) { perror("open"); return 2; }
  long cycles; int nwin;
  if (fscanf(fw, "%ld %d", &cycles, &nwin) != 2) return 2;
  long *ws = malloc(sizeof(long) * (nwin + 1)), *we = malloc(sizeof(long) * (nwin + 1));
  for (int i = 0; i < nwin; i++) if (fscanf(fw, "%ld %ld", &ws[i], &we[i]) != 2) return 2;
  uint8_t *in = calloc(NIN + 1, 1), *out = calloc(NOUT + 1, 1);

  /* every net from the constants and a zero state: every node evaluated once */
  v[1] = 1;
  for (i32 i = 0; i < NM; i++) mark(i);
  for (i32 q = 0; q < NFB; q++)
    for (i32 j = 0; j < fb_start[q + 1] - fb_start[q]; j++) fmask[q] |= (u64)1 << j;
  lo = 0;
  clock_logic();
  settle();
  for (i32 g = 0; g < NG; g++) last[g] = v[grp[4 * g]];
  memcpy(pv, v, NV);
  for (i32 i = 0; i < nchg; i++) flag[chg[i]] = 0;
  nchg = 0;

  int w = 0;
  for (long c = 0; c < cycles; c++) {
    if (w < nwin && c == we[w]) { dump(argv[5], ws[w]); w++; }
    if (w < nwin && c == ws[w]) {
      memset(rise, 0, (size_t)NV * 4); memset(fall, 0, (size_t)NV * 4);
      memset(acc, 0, (size_t)NACC * 4);
    }
    if (fread(in, 1, NIN, fs) != (size_t)NIN) { fprintf(stderr, "short stimulus\n"); return 2; }
    /* the clock falls and the cycle's inputs arrive */
    setx(CLK, 0);
    clock_logic();
    capture();
    macro_fall();
    for (i32 i = 0; i < NIN; i++) setx(IN[i], in[i]);
    settle_all();
    count();
    if (BEFORE) sample(out, fo_);
    /* the clock rises */
    setx(CLK, 1);
    clock_logic();
    capture();
    macro_rise();
    settle_all();
    count();
    if (!BEFORE) sample(out, fo_);
    if ((c & 63) == 63) fflush(fo_);
  }
  if (w < nwin && cycles == we[w]) { dump(argv[5], ws[w]); w++; }
  fclose(fo_);
  return 0;
}
