/*
 * The real node's sandbox ("pause") process: the first process of every pod sandbox, holding
 * its namespaces open. It sleeps until told to stop, reaps whatever children it inherits (it is
 * PID 1 of the pod's PID namespace when that is shared), and exits 0 on SIGINT or SIGTERM.
 * `pause -v` prints a version line.
 *
 * The same behaviour as Kubernetes' own (kubernetes/kubernetes:build/pause/linux/pause.c),
 * written here so the image is built from source on the machine: hack/real-node.sh compiles it
 * with `gcc -static -O2` into the node asset directory.
 */
#define _GNU_SOURCE
#include <signal.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static void stop(int signo) {
  (void)signo;
  /* Only async-signal-safe calls in a handler: _exit, not exit (no stdio flush to race). */
  _exit(0);
}

static void reap(int signo) {
  (void)signo;
  while (waitpid(-1, NULL, WNOHANG) > 0) {
  }
}

static int on(int signo, void (*handler)(int), int flags) {
  struct sigaction action;
  memset(&action, 0, sizeof action);
  action.sa_handler = handler;
  action.sa_flags = flags;
  sigemptyset(&action.sa_mask);
  return sigaction(signo, &action, NULL);
}

int main(int argc, char **argv) {
  static const char version[] = "pause (aimctl hack/real-node/pause.c)\n";
  static const char not_init[] = "Warning: pause should be the first process\n";
  int i;

  for (i = 1; i < argc; ++i) {
    if (strcmp(argv[i], "-v") == 0 || strcmp(argv[i], "-V") == 0) {
      return write(STDOUT_FILENO, version, sizeof version - 1) < 0;
    }
  }
  if (getpid() != 1) {
    /* Not an error: outside a sandbox (a test, a shell) it still works. */
    if (write(STDERR_FILENO, not_init, sizeof not_init - 1) < 0) {
      return 4;
    }
  }
  if (on(SIGINT, stop, 0) < 0 || on(SIGTERM, stop, 0) < 0) {
    return 1;
  }
  if (on(SIGCHLD, reap, SA_NOCLDSTOP | SA_RESTART) < 0) {
    return 3;
  }
  for (;;) {
    pause();
  }
}
