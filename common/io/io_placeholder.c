/* removed when the first io file lands */
typedef int io_placeholder_unused;
