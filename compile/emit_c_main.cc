// The `NAME_main.c` that `finch emit-c` writes beside the program's source: a small command-line
// driver (read raw records from a file, run, print, optionally write raw outputs, time runs), kept
// out of NAME.c so a microcontroller build takes the program alone.
#include <string>
#include <vector>

#include "compile/emit_c_detail.h"

namespace finch::compile::emit_c_detail {

namespace {

const char* kMain = R"(/* @N_main.c: runs the program of @N.c on raw inputs from files. Written by `finch emit-c`.
     @N_main @USAGE [--out OUTPUT.bin] [--repeat N] [--quiet]
   One file per program input, in order (@N_INPUTS here: @WHAT). Each holds one or more records
   of its input's size (@N_INPUT_SIZE, @N_INPUT1_SIZE, ... values; the machine's byte order,
   row-major in the program's input shape), every file the same number of records. Each record's
   outputs are printed as one line (floats with 9 significant digits, enough to read back the same
   bits); --out writes them raw (@N_OUTPUT_SIZE @OUT values per record; a temporary file renamed,
   so never half-written); --repeat N times N runs of the first record (median and min ms, and the
   median processor time, on stderr); --quiet prints nothing to stdout. Exit status 0 on success,
   1 with one sentence on stderr otherwise. */
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

/* Reads a whole file of records of `bytes` bytes each; 0 and a sentence on stderr otherwise. */
static unsigned char* read_records(const char* path, long bytes, long values, const char* type, long* records) {
  long size;
  unsigned char* data;
  FILE* f = fopen(path, "rb");
  if (f == NULL) {
    fail("cannot open the input file ", path);
    return NULL;
  }
  if (fseek(f, 0, SEEK_END) != 0 || (size = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) != 0) {
    fclose(f);
    fail("cannot read the input file ", path);
    return NULL;
  }
  if (size == 0 || size % bytes != 0) {
    fclose(f);
    fprintf(stderr, "@N_main: %s holds %ld bytes; expected a positive multiple of %ld (records of %ld %s values)\n",
            path, size, bytes, values, type);
    return NULL;
  }
  data = (unsigned char*)malloc((size_t)size);
  if (data == NULL) {
    fclose(f);
    fail("out of memory for the records of ", path);
    return NULL;
  }
  if (fread(data, 1, (size_t)size, f) != (size_t)size) {
    fclose(f);
    free(data);
    fail("cannot read all bytes of ", path);
    return NULL;
  }
  fclose(f);
  *records = size / bytes;
  return data;
}

int main(int argc, char** argv) {
  const char* paths[@N_INPUTS] = {0};
  const char* out_path = NULL;
  long repeat = 0, records = 0, r, i;
  int quiet = 0, a, npaths = 0;
  const long values[@N_INPUTS] = {@VALUES};
  const long bytes[@N_INPUTS] = {@BYTES};
  const char* types[@N_INPUTS] = {@TYPES};
  const long out_bytes = (long)(@N_OUTPUT_SIZE * sizeof(@OUT));
  unsigned char* in[@N_INPUTS];
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
      return fail("unknown option (usage: @N_main @USAGE [--out OUTPUT.bin] [--repeat N] [--quiet]): ", argv[a]);
    } else if (npaths < @N_INPUTS) {
      paths[npaths++] = argv[a];
    } else {
      return fail("expected @N_INPUTS input file(s) (@WHAT), got another one: ", argv[a]);
    }
  }
  if (npaths < @N_INPUTS) return fail("usage: @N_main @USAGE [--out OUTPUT.bin] [--repeat N] [--quiet]", NULL);
  for (i = 0; i < @N_INPUTS; ++i) {
    long n = 0;
    in[i] = read_records(paths[i], bytes[i], values[i], types[i], &n);
    if (in[i] == NULL) return 1;
    if (i > 0 && n != records) {
      fprintf(stderr, "@N_main: %s holds %ld records; expected %ld, as %s holds\n", paths[i], n, records, paths[0]);
      return 1;
    }
    records = n;
  }
  out = (@OUT*)malloc((size_t)(records * out_bytes));
  if (out == NULL) return fail("out of memory for the outputs", NULL);
  for (r = 0; r < records; ++r) {
    const int rc = @CALL;
    if (rc == 1) {
      fprintf(stderr, "@N_main: record %ld of %s: a length is outside 1..T (the program's steps); the program refuses it\n",
              r, paths[@N_INPUTS - 1]);
      return 1;
    }
    if (rc == 2) {
      fprintf(stderr, "@N_main: record %ld of %s: a token id is outside 0..V-1 (the embedding's rows); the program refuses it\n",
              r, paths[0]);
      return 1;
    }
    if (rc != 0) {
      fprintf(stderr, "@N_main: record %ld of %s: a value the program quantizes dynamically is not finite; the program refuses it\n",
              r, paths[0]);
      return 1;
    }
  }
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
    r = 0;
    for (i = 0; i < repeat; ++i) {
      const double t0 = now_ms(), c0 = cpu_ms();
      (void)(@CALL);
      ms[i] = now_ms() - t0;
      ms[repeat + i] = cpu_ms() - c0;
    }
    qsort(ms, (size_t)repeat, sizeof(double), compare_double);
    qsort(ms + repeat, (size_t)repeat, sizeof(double), compare_double);
    fprintf(stderr, "@N_main: %ld runs of record 0: median %.4f ms, min %.4f ms; cpu time median %.4f ms\n", repeat,
            ms[repeat / 2], ms[0], ms[repeat + repeat / 2]);
    free(ms);
  }
  for (i = 0; i < @N_INPUTS; ++i) free(in[i]);
  free(out);
  return 0;
}
)";

void replace_all(std::string& s, const std::string& from, const std::string& to) {
  for (size_t at = s.find(from); at != std::string::npos; at = s.find(from, at + to.size())) s.replace(at, from.size(), to);
}

}  // namespace

std::string main_text(const std::string& name, const std::vector<std::string>& in_types, const std::string& out_type) {
  std::string s = kMain;
  const bool float_out = out_type == "float";
  std::string values, bytes, types, usage, what, call = "@N_run(";
  for (size_t i = 0; i < in_types.size(); ++i) {
    const std::string macro = "@N_INPUT" + (i == 0 ? std::string() : std::to_string(i)) + "_SIZE";
    const std::string sep = i == 0 ? "" : ", ";
    values += sep + "(long)" + macro;
    bytes += sep + "(long)(" + macro + " * sizeof(" + in_types[i] + "))";
    types += sep + "\"" + in_types[i] + "\"";
    usage += (i == 0 ? "INPUT.bin" : " INPUT" + std::to_string(i) + ".bin");
    what += sep + in_types[i] + (in_types[i] == "int64_t" ? " lengths" : " values");
    call += "(const " + in_types[i] + "*)in[" + std::to_string(i) + "] + r * " + macro + ", ";
  }
  call += "out + r * @N_OUTPUT_SIZE)";
  replace_all(s, "@CALL", call);
  replace_all(s, "@VALUES", values);
  replace_all(s, "@BYTES", bytes);
  replace_all(s, "@TYPES", types);
  replace_all(s, "@USAGE", usage);
  replace_all(s, "@WHAT", what);
  replace_all(s, "@FMT", float_out ? "%.9g" : "%d");
  replace_all(s, "@CAST", float_out ? "(double)" : "(int)");
  replace_all(s, "@OUT", out_type);
  replace_all(s, "@N", name);
  return s;
}

}  // namespace finch::compile::emit_c_detail
