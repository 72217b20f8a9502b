/* Declarations only (include/cfuzz.h); a C target needs one source file. */
#include "cfuzz.h"
