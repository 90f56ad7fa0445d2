// test_reference_f.c — test_reference.c built with real = float (TESTS_F):
// the float tolerance of the same checks.
#include "test_reference.c"
