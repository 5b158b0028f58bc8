/* removed when the first nn file lands */
typedef int nn_placeholder_unused;
