// The `NAME_main.c` that `finch emit-c` writes beside the program's source: a small command-line
// driver (read raw records from a file, run, print, optionally write raw outputs, time runs), kept
// out of NAME.c so a microcontroller build takes the program alone.
#include <string>

#include "compile/emit_c_detail.h"

namespace finch::compile::emit_c_detail {

namespace {

const char* kMain = R"(/* @N_main.c: runs the program of @N.c on raw inputs from a file. Written by `finch emit-c`.
     @N_main INPUT.bin [--out OUTPUT.bin] [--repeat N] [--quiet]
   INPUT.bin holds one or more records of @N_INPUT_SIZE @IN values each (the machine's byte order,
   row-major in the program's input shape). Each record's outputs are printed as one line
   (floats with 9 significant digits, enough to read back the same bits); --out writes them raw
   (@N_OUTPUT_SIZE @OUT values per record; a temporary file renamed, so never half-written);
   --repeat N times N runs of the first record (median and min ms, and the median processor time,
   on stderr); --quiet prints
   nothing to stdout. Exit status 0 on success, 1 with one sentence on stderr otherwise. */
#if !defined(__cplusplus) && !defined(_POSIX_C_SOURCE)
#define _POSIX_C_SOURCE 199309L
#endif
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "@N.h"

static double now_ms(void) {
#if defined(CLOCK_MONOTONIC)
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec * 1e3 + (double)t.tv_nsec / 1e6;
#else
  return (double)clock() * 1e3 / (double)CLOCKS_PER_SEC;
#endif
}

/* Processor time of this process: on a busy machine a run waits for a core, and wall time
   measures the waiting too. */
static double cpu_ms(void) {
#if defined(CLOCK_PROCESS_CPUTIME_ID)
  struct timespec t;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
  return (double)t.tv_sec * 1e3 + (double)t.tv_nsec / 1e6;
#else
  return (double)clock() * 1e3 / (double)CLOCKS_PER_SEC;
#endif
}

static int compare_double(const void* a, const void* b) {
  const double x = *(const double*)a, y = *(const double*)b;
  return x < y ? -1 : x > y ? 1 : 0;
}

static int fail(const char* sentence, const char* what) {
  fprintf(stderr, "@N_main: %s%s\n", sentence, what ? what : "");
  return 1;
}

int main(int argc, char** argv) {
  const char* in_path = NULL;
  const char* out_path = NULL;
  long repeat = 0, size, records, r, i;
  int quiet = 0, a;
  const long in_bytes = (long)(@N_INPUT_SIZE * sizeof(@IN)), out_bytes = (long)(@N_OUTPUT_SIZE * sizeof(@OUT));
  @IN* in;
  @OUT* out;
  FILE* f;
  for (a = 1; a < argc; ++a) {
    if (strcmp(argv[a], "--quiet") == 0) {
      quiet = 1;
    } else if (strcmp(argv[a], "--out") == 0 && a + 1 < argc) {
      out_path = argv[++a];
    } else if (strcmp(argv[a], "--repeat") == 0 && a + 1 < argc) {
      char* end = NULL;
      repeat = strtol(argv[++a], &end, 10);
      if (end == argv[a] || *end != '\0' || repeat < 1 || repeat > 10000000)
        return fail("expected --repeat to be a whole number from 1 to 10000000, got ", argv[a]);
    } else if (argv[a][0] == '-' && argv[a][1] != '\0') {
      return fail("unknown option (usage: @N_main INPUT.bin [--out OUTPUT.bin] [--repeat N] [--quiet]): ", argv[a]);
    } else if (in_path == NULL) {
      in_path = argv[a];
    } else {
      return fail("expected one input file, got a second one: ", argv[a]);
    }
  }
  if (in_path == NULL) return fail("usage: @N_main INPUT.bin [--out OUTPUT.bin] [--repeat N] [--quiet]", NULL);
  f = fopen(in_path, "rb");
  if (f == NULL) return fail("cannot open the input file ", in_path);
  if (fseek(f, 0, SEEK_END) != 0 || (size = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) != 0) {
    fclose(f);
    return fail("cannot read the input file ", in_path);
  }
  if (size == 0 || size % in_bytes != 0) {
    fclose(f);
    fprintf(stderr, "@N_main: %s holds %ld bytes; expected a positive multiple of %ld (records of %ld @IN values)\n",
            in_path, size, in_bytes, (long)@N_INPUT_SIZE);
    return 1;
  }
  records = size / in_bytes;
  in = (@IN*)malloc((size_t)size);
  out = (@OUT*)malloc((size_t)(records * out_bytes));
  if (in == NULL || out == NULL) {
    fclose(f);
    return fail("out of memory for the records of ", in_path);
  }
  if (fread(in, 1, (size_t)size, f) != (size_t)size) {
    fclose(f);
    return fail("cannot read all bytes of ", in_path);
  }
  fclose(f);
  for (r = 0; r < records; ++r)
    if (@N_run(in + r * @N_INPUT_SIZE, out + r * @N_OUTPUT_SIZE) != 0) return fail("the program failed", NULL);
  for (r = 0; r < records && !quiet; ++r) {
    for (i = 0; i < @N_OUTPUT_SIZE; ++i) printf(i ? " @FMT" : "@FMT", @CAST out[r * @N_OUTPUT_SIZE + i]);
    printf("\n");
  }
  if (out_path != NULL) {
    char* tmp = (char*)malloc(strlen(out_path) + 5);
    if (tmp == NULL) return fail("out of memory", NULL);
    strcpy(tmp, out_path);
    strcat(tmp, ".tmp");
    f = fopen(tmp, "wb");
    if (f == NULL) return fail("cannot write the output file ", tmp);
    if (fwrite(out, 1, (size_t)(records * out_bytes), f) != (size_t)(records * out_bytes) || fclose(f) != 0) {
      remove(tmp);
      return fail("cannot write all bytes of ", tmp);
    }
    if (rename(tmp, out_path) != 0) {
      remove(tmp);
      return fail("cannot rename the finished output to ", out_path);
    }
    free(tmp);
  }
  if (repeat > 0) {
    double* ms = (double*)malloc(2 * (size_t)repeat * sizeof(double));
    if (ms == NULL) return fail("out of memory for the timings", NULL);
    for (i = 0; i < repeat; ++i) {
      const double t0 = now_ms(), c0 = cpu_ms();
      @N_run(in, out);
      ms[i] = now_ms() - t0;
      ms[repeat + i] = cpu_ms() - c0;
    }
    qsort(ms, (size_t)repeat, sizeof(double), compare_double);
    qsort(ms + repeat, (size_t)repeat, sizeof(double), compare_double);
    fprintf(stderr, "@N_main: %ld runs of record 0: median %.4f ms, min %.4f ms; cpu time median %.4f ms\n", repeat,
            ms[repeat / 2], ms[0], ms[repeat + repeat / 2]);
    free(ms);
  }
  free(in);
  free(out);
  return 0;
}
)";

void replace_all(std::string& s, const std::string& from, const std::string& to) {
  for (size_t at = s.find(from); at != std::string::npos; at = s.find(from, at + to.size())) s.replace(at, from.size(), to);
}

}  // namespace

std::string main_text(const std::string& name, const std::string& in_type, const std::string& out_type) {
  std::string s = kMain;
  const bool float_out = out_type == "float";
  replace_all(s, "@FMT", float_out ? "%.9g" : "%d");
  replace_all(s, "@CAST", float_out ? "(double)" : "(int)");
  replace_all(s, "@IN", in_type);
  replace_all(s, "@OUT", out_type);
  replace_all(s, "@N", name);
  return s;
}

}  // namespace finch::compile::emit_c_detail
