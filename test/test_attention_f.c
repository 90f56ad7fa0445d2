// test_attention_f.c — test_attention.c built with real = float (TESTS_F):
// the float tolerances of the same checks.
#include "test_attention.c"
