# Sourced by the build scripts: when ccache is installed (scripts/install-deps.sh installs it),
# compile through it with paths taken relative to the repository, so a fresh clone in another
# folder (CI's) reuses what an earlier build on the machine compiled. Sets `launcher` to the
# CMake arguments; empty without ccache.
launcher=()
if command -v ccache >/dev/null 2>&1; then
  export CCACHE_BASEDIR="$PWD"
  launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache -DCMAKE_C_COMPILER_LAUNCHER=ccache)
fi
