// <immintrin.h> for the ISA-specific kernel sources. GCC 12's AVX-512 headers initialise the
// pass-through operand of masked builtins from itself (_mm512_undefined_*), which -Wall reports as
// -W(maybe-)uninitialized at the header line after inlining (GCC PR 105593); the diagnostics are
// silenced for the header's own lines only.
#pragma once

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#include <immintrin.h>
#pragma GCC diagnostic pop
