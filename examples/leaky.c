/*
 * The example leaks finds: a small settings parser that forgets to free
 * what it parsed when a setting is rejected.  Run it under
 *
 *     tools/leaks --atExit -- ./examples/leaky
 *
 * and leaks names the lost list, its three entries and the line that
 * allocated them.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct setting {
    struct setting *next;
    char *name, *value;
};

static struct setting *parse_settings(const char *text)
{
    struct setting *head = NULL;
    char *copy = strdup(text);
    for (char *item = strtok(copy, ";"); item; item = strtok(NULL, ";")) {
        char *equals = strchr(item, '=');
        if (!equals)
            continue;
        struct setting *setting = malloc(sizeof(*setting));
        *equals = '\0';
        setting->name = strdup(item);
        setting->value = strdup(equals + 1);
        setting->next = head;
        head = setting;
    }
    free(copy);
    return head;
}

static void free_settings(struct setting *setting)
{
    while (setting) {
        struct setting *next = setting->next;
        free(setting->name);
        free(setting->value);
        free(setting);
        setting = next;
    }
}

/* Rejects a list with a bad port, and loses it: the bug. */
static int apply_settings(const char *text)
{
    struct setting *settings = parse_settings(text);
    for (struct setting *s = settings; s; s = s->next)
        if (strcmp(s->name, "port") == 0 && atoi(s->value) <= 0) {
            fprintf(stderr, "leaky: bad port '%s'\n", s->value);
            return -1;
        }
    free_settings(settings);
    return 0;
}

int main(void)
{
    apply_settings("host=localhost;port=8080");
    apply_settings("host=example.org;port=none;user=admin");
    return 0;
}
