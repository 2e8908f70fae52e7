# Sourced by tests/sanitize.sh and tests/fuzz/run.sh: the sanitizer runtime
# options of every sanitized process (unit tests and fuzz targets).
# - detect_leaks=1: a leak fails the run (LeakSanitizer).
# - abort_on_error=1: a report ends the process as a crash (libFuzzer keeps the input).
# - detect_odr_violation=0: Debian's libprotobuf, libgrpc++ and Abseil are built
#   by gcc without ASan. Their globals carry no ASan metadata, and a header-only
#   global seen both from their objects and ours (Abseil/protobuf inline
#   variables) is reported as an ODR violation that is not one. Our own code is
#   linked once per binary, so this check has nothing to find there.
# - detect_container_overflow stays at its default (on): libstdc++ is not
#   annotated for it, so nothing of an uninstrumented library can trip it.
# - check_initialization_order/strict_init_order: static init order bugs fail.
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:detect_odr_violation=0:check_initialization_order=1:strict_init_order=1}"
# UBSan is fatal already (-fno-sanitize-recover=all); print the stack of a report.
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
