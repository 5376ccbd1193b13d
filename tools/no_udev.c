/*
 * no_udev.c - libudev as hwloc's static archive sees it in the CLI: no udev here.
 *
 * hwloc asks udev only for the properties of block devices (vendor, model, serial) when it
 * discovers I/O objects, and pareng filters every I/O object out (engine/topology.c,
 * keep_only_what_placement_reads). Linking Debian's libudev for that made every start of
 * pareng map and relocate one library more (0.05 to 0.1 ms of a start here, most of which
 * is in a `pareng run` that loads no topology at all), and needed libudev-dev to build. These
 * are the five functions hwloc calls, saying what libudev says where it cannot work: udev_new
 * returns NULL, which hwloc already handles by reading sysfs alone.
 */
#include <stddef.h>

struct udev;
struct udev_device;

struct udev *udev_new(void);
struct udev *udev_unref(struct udev *udev);
struct udev_device *udev_device_new_from_subsystem_sysname(struct udev *udev,
                                                           const char *subsystem,
                                                           const char *sysname);
const char *udev_device_get_property_value(struct udev_device *device, const char *key);
struct udev_device *udev_device_unref(struct udev_device *device);

struct udev *udev_new(void)
{
    return NULL;
}

struct udev *udev_unref(struct udev *udev)
{
    (void)udev;
    return NULL;
}

struct udev_device *udev_device_new_from_subsystem_sysname(struct udev *udev,
                                                           const char *subsystem,
                                                           const char *sysname)
{
    (void)udev, (void)subsystem, (void)sysname;
    return NULL;
}

const char *udev_device_get_property_value(struct udev_device *device, const char *key)
{
    (void)device, (void)key;
    return NULL;
}

struct udev_device *udev_device_unref(struct udev_device *device)
{
    (void)device;
    return NULL;
}
