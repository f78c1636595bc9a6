# CMake toolchain file: cross-compile finch for 64-bit ARM Linux (Raspberry Pi 4/5) on a Debian
# x86 host with g++-aarch64-linux-gnu and the arm64 multiarch -dev packages, and let ctest run
# the test binaries under qemu-aarch64 (scripts/test-arm.sh installs all of it).
#   cmake -S . -B build-arm -DCMAKE_TOOLCHAIN_FILE=cmake/aarch64-linux-gnu.cmake -DFINCH_RUNTIME_ONLY=ON
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)

set(CMAKE_C_COMPILER aarch64-linux-gnu-gcc)
set(CMAKE_CXX_COMPILER aarch64-linux-gnu-g++)

# Headers and libraries come from the target's sysroot and Debian's multiarch folders (arm64
# packages install into /usr/lib/aarch64-linux-gnu); programs (pkg-config, the compilers) from
# the host. /usr is needed for the architecture-independent headers (nlohmann/json, the hwy and
# gtest CMake configs under /usr/lib/aarch64-linux-gnu/cmake are found through it).
set(CMAKE_FIND_ROOT_PATH /usr/aarch64-linux-gnu /usr/lib/aarch64-linux-gnu /usr)
set(CMAKE_LIBRARY_ARCHITECTURE aarch64-linux-gnu)
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE ONLY)

# pkg-config must see only the arm64 .pc files (openblas.pc), never the host's amd64 ones.
set(ENV{PKG_CONFIG_LIBDIR} /usr/lib/aarch64-linux-gnu/pkgconfig:/usr/share/pkgconfig)
set(ENV{PKG_CONFIG_PATH} "")

# ctest (and gtest_discover_tests at build time) run the binaries under qemu-aarch64. The
# loader and libc come from Debian's libc6:arm64 (/lib/ld-linux-aarch64.so.1, pulled in by the
# arm64 -dev packages), the same place libhwy/libopenblas/libstdc++ resolve through ld.so.cache.
# Deliberately no `-L /usr/aarch64-linux-gnu`: that makes qemu take ld.so from the cross
# toolchain's glibc build (2.36-8cross1) while libc.so.6 still comes from libc6:arm64
# (2.36-9+deb12uN); the mismatched pair deadlocks in the first pthread_create.
# QEMU_CPU (cortex-a72, cortex-a76, max) picks the modelled CPU at run time.
find_program(FINCH_QEMU_AARCH64 NAMES qemu-aarch64 qemu-aarch64-static REQUIRED)
set(CMAKE_CROSSCOMPILING_EMULATOR ${FINCH_QEMU_AARCH64})
