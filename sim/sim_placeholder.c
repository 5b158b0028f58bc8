typedef int sim_placeholder_unused; /* removed when sim_data.c lands */
