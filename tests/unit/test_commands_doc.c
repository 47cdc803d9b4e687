/* core/control/COMMANDS.md and the session's command table cannot drift:
 * every usage in the table (each alternative of one, split at " | ") is the
 * first cell of a row of a `| command |` table in COMMANDS.md, and every
 * command documented in such a row is in the table with that usage. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "lathe/session.h"

#define MAX_DOCUMENTED 128

static char documented[MAX_DOCUMENTED][256];
static int ndocumented;

/* The backquoted spans of a row's first cell ("| `a` \| `b` | ..."), with
 * the Markdown escape \| read as |. */
static void take_row(const char *line) {
    const char *p = line + 1;
    while (*p && !(*p == '|' && p[-1] != '\\')) {
        if (*p != '`') {
            p++;
            continue;
        }
        const char *end = strchr(p + 1, '`');
        if (!end) break;
        char span[256];
        size_t n = 0;
        for (const char *q = p + 1; q < end && n + 1 < sizeof span; q++)
            if (!(q[0] == '\\' && q[1] == '|')) span[n++] = *q;
        span[n] = '\0';
        if (ndocumented < MAX_DOCUMENTED) snprintf(documented[ndocumented++], sizeof documented[0], "%s", span);
        p = end + 1;
    }
}

static void read_doc(void) {
    FILE *f = fopen(LATHE_SOURCE_DIR "/core/control/COMMANDS.md", "r");
    CHECK_MSG(f != NULL, "cannot open COMMANDS.md");
    if (!f) return;
    char line[8192];
    int in_commands = 0;
    while (fgets(line, sizeof line, f)) {
        if (line[0] != '|') {
            in_commands = 0;
            continue;
        }
        if (!strncmp(line, "| command |", 11))
            in_commands = 1;
        else if (in_commands && strncmp(line, "| ---", 5))
            take_row(line);
    }
    fclose(f);
}

static int is_documented(const char *usage) {
    for (int i = 0; i < ndocumented; i++)
        if (!strcmp(documented[i], usage)) return 1;
    return 0;
}

/* 1 when s is one of the " | "-separated alternatives of a usage in the table. */
static int in_table(const char *s) {
    for (int i = 0; lt_session_command_usage(i); i++) {
        const char *u = lt_session_command_usage(i);
        for (;;) {
            const char *bar = strstr(u, " | ");
            size_t n = bar ? (size_t)(bar - u) : strlen(u);
            if (n == strlen(s) && !strncmp(u, s, n)) return 1;
            if (!bar) break;
            u = bar + 3;
        }
    }
    return 0;
}

static void test_table_is_documented(void) {
    for (int i = 0; lt_session_command_usage(i); i++) {
        const char *u = lt_session_command_usage(i);
        CHECK_MSG(!strncmp(u, lt_session_command_word(i), strlen(lt_session_command_word(i))),
                  "usage '%s' does not start with its command", u);
        for (;;) {
            const char *bar = strstr(u, " | ");
            char alt[256];
            snprintf(alt, sizeof alt, "%.*s", (int)(bar ? (size_t)(bar - u) : strlen(u)), u);
            CHECK_MSG(is_documented(alt), "command table: `%s` is not documented in COMMANDS.md", alt);
            if (!bar) break;
            u = bar + 3;
        }
    }
}

static void test_documented_is_in_table(void) {
    CHECK(ndocumented > 10);
    for (int i = 0; i < ndocumented; i++)
        CHECK_MSG(in_table(documented[i]), "COMMANDS.md documents `%s`, which is no usage in the command table",
                  documented[i]);
}

int main(void) {
    read_doc();
    RUN(test_table_is_documented);
    RUN(test_documented_is_in_table);
    return check_done();
}
