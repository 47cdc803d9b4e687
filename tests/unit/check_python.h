/* check_python.h: the Python that the real-reader checks use. */
#ifndef LATHE_CHECK_PYTHON_H
#define LATHE_CHECK_PYTHON_H

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

/* A Python that can `import module` for the real-reader checks: $LATHE_PYTHON,
 * else /opt/lathe-venv/bin/python; NULL (the caller skips that part) when
 * neither has it. */
static inline const char *check_python_with(const char *module) {
    const char *py = getenv("LATHE_PYTHON");
    if (!py || !*py) py = "/opt/lathe-venv/bin/python";
    if (access(py, X_OK) != 0) return NULL;
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "'%s' -c 'import %s' >/dev/null 2>&1", py, module);
    return system(cmd) == 0 ? py : NULL;
}

#endif
