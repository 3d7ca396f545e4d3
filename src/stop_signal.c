/* stop_signal.c - SIGINT/SIGTERM during training: a flag for the batch loop, then, on a second
 * signal, the default action (docs/robustness.md). */
#define _POSIX_C_SOURCE 200809L
#include "stop_signal.h"

#include <string.h>

volatile sig_atomic_t stop_signal;

/* The first signal asks the batch loop to stop after the current batch and save; a second one
 * (of either kind) ends the process at once, by that signal's default action, without touching
 * any file. Only async-signal-safe calls here. */
static void on_stop(int sig)
{
    if (stop_signal) {
        signal(sig, SIG_DFL);
        raise(sig); /* blocked in this handler: delivered, and fatal, when it returns */
        return;
    }
    stop_signal = sig;
}

void stop_signal_install(stop_signal_saved *saved)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_stop;
    sa.sa_flags = SA_RESTART;
    sigemptyset(&sa.sa_mask);
    sigaddset(&sa.sa_mask, SIGINT);
    sigaddset(&sa.sa_mask, SIGTERM);
    stop_signal = 0;
    sigaction(SIGINT, &sa, &saved->sigint);
    sigaction(SIGTERM, &sa, &saved->sigterm);
}

void stop_signal_restore(const stop_signal_saved *saved)
{
    sigaction(SIGINT, &saved->sigint, NULL);
    sigaction(SIGTERM, &saved->sigterm, NULL);
}

const char *signal_name(int sig) { return sig == SIGINT ? "SIGINT" : "SIGTERM"; }
