# compare.awk: the course's drift check. Compares an example's printed output (file 1) with the
# block a chapter quotes (file 2) line by line: the text around the numbers must be identical,
# and each number must agree within |got - want| <= atol + rtol*|want| (rtol, atol passed -v).
# Numbers are the tokens matching the regex below; "nan"/"inf" are text and must match exactly.
function split_numbers(line, nums,    n, skel, pat) {
  n = 0; skel = ""
  pat = "-?[0-9]+(\\.[0-9]+)?([eE][-+]?[0-9]+)?"
  while (match(line, pat)) {
    skel = skel substr(line, 1, RSTART - 1) "#"
    nums[++n] = substr(line, RSTART, RLENGTH) + 0
    line = substr(line, RSTART + RLENGTH)
  }
  nums[0] = n
  return skel line
}
function absval(x) { return x < 0 ? -x : x }
FNR == NR { got[++ng] = $0; next }
{ want[++nw] = $0 }
END {
  bad = 0
  if (ng != nw) {
    printf("line count differs: the example printed %d lines, the chapter quotes %d\n", ng, nw)
    bad = 1
  }
  n = ng < nw ? ng : nw
  for (i = 1; i <= n; ++i) {
    delete a; delete b
    sa = split_numbers(got[i], a)
    sb = split_numbers(want[i], b)
    if (sa != sb || a[0] != b[0]) {
      printf("line %d: text differs\n  example: %s\n  chapter: %s\n", i, got[i], want[i])
      bad = 1; continue
    }
    for (k = 1; k <= a[0]; ++k) {
      if (absval(a[k] - b[k]) > atol + rtol * absval(b[k])) {
        printf("line %d, number %d: example %.9g, chapter %.9g (tolerance %g + %g*|chapter|)\n",
               i, k, a[k], b[k], atol, rtol)
        printf("  example: %s\n  chapter: %s\n", got[i], want[i])
        bad = 1
      }
    }
  }
  exit bad
}
