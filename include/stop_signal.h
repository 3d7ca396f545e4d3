/* stop_signal.h - stopping a run cleanly: the first SIGINT or SIGTERM asks the batch loop to
 * stop after the current batch (and save); a second one ends the process at once, by that
 * signal's default action, without touching any file (docs/robustness.md). */
#ifndef STOP_SIGNAL_H
#define STOP_SIGNAL_H

#include <signal.h>

/* The first SIGINT or SIGTERM (its number); 0 while none came. Only the handler writes it;
 * the batch loop reads it between batches. */
extern volatile sig_atomic_t stop_signal;

/* The actions a handler replaced, to put back. */
typedef struct stop_signal_saved {
    struct sigaction sigint, sigterm;
} stop_signal_saved;

/* Clears stop_signal and installs the handler for SIGINT and SIGTERM, keeping the previous
 * actions in saved. */
void stop_signal_install(stop_signal_saved *saved);

/* Puts back the actions stop_signal_install replaced. */
void stop_signal_restore(const stop_signal_saved *saved);

/* "SIGINT" or "SIGTERM", for messages. */
const char *signal_name(int sig);

#endif
