/*
 * md5 of many equal-sized parts of one buffer at once, one part per 32-bit vector lane.
 *
 * An S3 multipart upload checks each part by its md5 (the part's ETag). One md5 cannot be
 * split, but the parts of an upload are independent: this module hashes sixteen of them side
 * by side, one per lane, several times hashlib's throughput (docs/performance.md has the
 * figures per instruction set). It is an optional speed-up: where it cannot be built, the
 * caller hashes parts with hashlib.
 *
 * The algorithm is RFC 1321's; the tests check every digest against hashlib's.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>
#include <stdint.h>
#include <string.h>
#include <errno.h>
#include <unistd.h>

#if !(defined(__GNUC__) || defined(__clang__)) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "the md5 lanes kernel needs GCC or Clang vector types on a little-endian CPU"
#endif

/* One kernel, written with GCC/Clang vector types; on x86-64 Linux it is compiled for AVX-512,
 * AVX2 and plain SSE2, the best one chosen when the module loads. MD5LANES_ONE_TARGET builds
 * it for the compiler's target alone (the tests check each variant that way). */
#if defined(__x86_64__) && defined(__linux__) && !defined(__clang__) && !defined(MD5LANES_ONE_TARGET)
#define KERNEL_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define KERNEL_CLONES
#endif

#define LANES 16

static uint32_t K[64];          /* floor(|sin(i + 1)| * 2^32), RFC 1321 section 3.4 */
static unsigned char MSG[64];   /* which message word step i adds */

static void
init_tables(void)
{
    for (int i = 0; i < 64; i++) {
        K[i] = (uint32_t)(fabs(sin((double)(i + 1))) * 4294967296.0);
        if (i < 16)
            MSG[i] = (unsigned char)i;
        else if (i < 32)
            MSG[i] = (unsigned char)((5 * i + 1) % 16);
        else if (i < 48)
            MSG[i] = (unsigned char)((3 * i + 5) % 16);
        else
            MSG[i] = (unsigned char)((7 * i) % 16);
    }
}

typedef uint32_t lanes_t __attribute__((vector_size(4 * LANES)));

/* One md5 step on all lanes: a = b + rotl(a + f + K[i] + word, s). */
#define STEP(f, a, b, i, s)                                   \
    do {                                                      \
        lanes_t t_ = a + (f) + K[i] + m[MSG[i]];              \
        a = b + ((t_ << (s)) | (t_ >> (32 - (s))));           \
    } while (0)
#define F(x, y, z) ((z) ^ ((x) & ((y) ^ (z))))
#define G(x, y, z) ((y) ^ ((z) & ((x) ^ (y))))
#define H(x, y, z) ((x) ^ (y) ^ (z))
#define I(x, y, z) ((y) ^ ((x) | ~(z)))
/* Sixteen steps with one function, the state's roles turning by one each step. */
#define ROUND(f, first, s0, s1, s2, s3)                       \
    for (int i = first; i < first + 16; i += 4) {             \
        STEP(f(b, c, d), a, b, i, s0);                        \
        STEP(f(a, b, c), d, a, i + 1, s1);                    \
        STEP(f(d, a, b), c, d, i + 2, s2);                    \
        STEP(f(c, d, a), b, c, i + 3, s3);                    \
    }

/* Runs `nblocks` 64-byte blocks of each lane (lane l reads from starts[l] + 64 * block)
 * through the lane states in `st`. */
KERNEL_CLONES static void
blocks(lanes_t st[4], const unsigned char *const *starts, size_t nblocks)
{
    lanes_t a = st[0], b = st[1], c = st[2], d = st[3];
    for (size_t block = 0; block < nblocks; block++) {
        lanes_t m[16];
        for (int j = 0; j < 16; j++)
            for (int l = 0; l < LANES; l++) {
                uint32_t word;
                memcpy(&word, starts[l] + 64 * block + 4 * j, 4); /* little-endian, as md5 */
                m[j][l] = word;
            }
        lanes_t a0 = a, b0 = b, c0 = c, d0 = d;
        ROUND(F, 0, 7, 12, 17, 22);
        ROUND(G, 16, 5, 9, 14, 20);
        ROUND(H, 32, 4, 11, 16, 23);
        ROUND(I, 48, 6, 10, 15, 21);
        a += a0;
        b += b0;
        c += c0;
        d += d0;
    }
    st[0] = a;
    st[1] = b;
    st[2] = c;
    st[3] = d;
}

static void
lanes_init(lanes_t st[4])
{
    for (int l = 0; l < LANES; l++) {
        st[0][l] = 0x67452301;
        st[1][l] = 0xefcdab89;
        st[2][l] = 0x98badcfe;
        st[3][l] = 0x10325476;
    }
}

/* Ends the md5s of parts `length` bytes long whose last `length % 64` bytes (after the whole
 * blocks already run) are at rests[l]: the 0x80 byte, zeros and the length in bits make one or
 * two more blocks. Lane l's digest goes to out + 16 * l, for the first `lanes` lanes. */
static void
lanes_finish(lanes_t st[4], const unsigned char *const *rests, int lanes, size_t length,
             unsigned char *out)
{
    size_t rest = length % 64;
    size_t tail = rest + 9 <= 64 ? 1 : 2;
    unsigned char pad[LANES][128];
    const unsigned char *padded[LANES];
    uint64_t bits = (uint64_t)length * 8;
    for (int l = 0; l < LANES; l++) {
        memset(pad[l], 0, sizeof pad[l]);
        memcpy(pad[l], rests[l], rest);
        pad[l][rest] = 0x80;
        memcpy(pad[l] + 64 * tail - 8, &bits, 8); /* little-endian, as md5 wants */
        padded[l] = pad[l];
    }
    blocks(st, padded, tail);
    for (int l = 0; l < lanes; l++)
        for (int k = 0; k < 4; k++) {
            uint32_t word = st[k][l];
            memcpy(out + 16 * l + 4 * k, &word, 4);
        }
}

/* md5 of `lanes` (1..LANES) parts of `length` bytes each, at given[0..lanes-1]; digests go
 * to out + 16 * lane. Unused lanes repeat lane 0's work and are dropped. */
static void
md5_group(const unsigned char *const *given, int lanes, size_t length, unsigned char *out)
{
    const unsigned char *starts[LANES];
    for (int l = 0; l < LANES; l++)
        starts[l] = given[l < lanes ? l : 0];
    lanes_t st[4];
    lanes_init(st);
    size_t full = length / 64;
    blocks(st, starts, full);
    for (int l = 0; l < LANES; l++)
        starts[l] += 64 * full;
    lanes_finish(st, starts, lanes, length, out);
}

/* A list of `count` 16-byte digests laid end to end at `digests`, as bytes objects. */
static PyObject *
digest_list(const char *digests, Py_ssize_t count)
{
    PyObject *result = PyList_New(count);
    if (result == NULL)
        return NULL;
    for (Py_ssize_t i = 0; i < count; i++) {
        PyObject *one = PyBytes_FromStringAndSize(digests + 16 * i, 16);
        if (one == NULL) {
            Py_DECREF(result);
            return NULL;
        }
        PyList_SET_ITEM(result, i, one);
    }
    return result;
}

PyDoc_STRVAR(md5_parts_doc,
"md5_parts(buffer, part_size, /) -> list[bytes]\n\n"
"The md5 digests of ``buffer`` cut into consecutive parts of ``part_size`` bytes (the last\n"
"part may be shorter), in order.");

static PyObject *
md5_parts(PyObject *self, PyObject *args)
{
    Py_buffer view;
    Py_ssize_t part;
    if (!PyArg_ParseTuple(args, "y*n:md5_parts", &view, &part))
        return NULL;
    if (part <= 0) {
        PyBuffer_Release(&view);
        PyErr_Format(PyExc_ValueError, "md5_parts: part_size must be positive, not %zd", part);
        return NULL;
    }
    Py_ssize_t size = view.len;
    Py_ssize_t full = size / part;
    Py_ssize_t count = full + (size % part ? 1 : 0);
    PyObject *digests = PyBytes_FromStringAndSize(NULL, 16 * count);
    if (digests == NULL) {
        PyBuffer_Release(&view);
        return NULL;
    }
    unsigned char *out = (unsigned char *)PyBytes_AS_STRING(digests);
    const unsigned char *data = (const unsigned char *)view.buf;
    Py_BEGIN_ALLOW_THREADS
    const unsigned char *starts[LANES];
    for (Py_ssize_t first = 0; first < full; first += LANES) {
        int lanes = full - first < LANES ? (int)(full - first) : LANES;
        for (int l = 0; l < lanes; l++)
            starts[l] = data + (first + l) * part;
        md5_group(starts, lanes, (size_t)part, out + 16 * first);
    }
    if (full < count) {
        starts[0] = data + full * part;
        md5_group(starts, 1, (size_t)(size - full * part), out + 16 * full);
    }
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&view);
    PyObject *result = digest_list(PyBytes_AS_STRING(digests), count);
    Py_DECREF(digests);
    return result;
}

/* Bytes of each lane read per round from a file: sixteen of them stay in the L2 cache. */
#define FILE_CHUNK (64 * 1024)

/* Reads exactly n bytes at offset: 0 done, 1 the file ends first, -1 an error (errno). */
static int
read_at(int fd, unsigned char *buf, size_t n, off_t offset)
{
    while (n > 0) {
        ssize_t got = pread(fd, buf, n, offset);
        if (got < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        if (got == 0)
            return 1;
        buf += got;
        n -= (size_t)got;
        offset += got;
    }
    return 0;
}

/* md5 of `lanes` parts of `length` bytes of a file, part l at offset + l * length, read in
 * rounds of FILE_CHUNK bytes per lane into buf (LANES * FILE_CHUNK bytes). As read_at. */
static int
md5_file_group(int fd, off_t offset, int lanes, size_t length, unsigned char *buf,
               unsigned char *out)
{
    const unsigned char *starts[LANES];
    for (int l = 0; l < LANES; l++)
        starts[l] = buf + (size_t)(l < lanes ? l : 0) * FILE_CHUNK;
    lanes_t st[4];
    lanes_init(st);
    size_t done = 0;
    do {
        size_t n = length - done < FILE_CHUNK ? length - done : FILE_CHUNK;
        for (int l = 0; l < lanes; l++) {
            int status = read_at(fd, buf + (size_t)l * FILE_CHUNK, n,
                                 offset + (off_t)l * (off_t)length + (off_t)done);
            if (status != 0)
                return status;
        }
        blocks(st, starts, n / 64);
        done += n;
    } while (done < length);
    /* FILE_CHUNK is whole blocks: only the last round leaves a rest, at its whole blocks' end */
    size_t rest_at = (length - 1) % FILE_CHUNK + 1 - length % 64;
    const unsigned char *rests[LANES];
    for (int l = 0; l < LANES; l++)
        rests[l] = starts[l] + rest_at;
    lanes_finish(st, rests, lanes, length, out);
    return 0;
}

PyDoc_STRVAR(md5_file_parts_doc,
"md5_file_parts(fd, offset, part_size, count, /) -> list[bytes]\n\n"
"The md5 digests of ``count`` consecutive parts of ``part_size`` bytes of the file open as\n"
"``fd``, the first at ``offset``, read with pread (the file position is left alone) a\n"
"little of every part at a time. EOFError if the file ends before the last part does.");

static PyObject *
md5_file_parts(PyObject *self, PyObject *args)
{
    int fd;
    long long offset;
    Py_ssize_t part, count;
    if (!PyArg_ParseTuple(args, "iLnn:md5_file_parts", &fd, &offset, &part, &count))
        return NULL;
    if (part <= 0 || count < 0 || offset < 0) {
        PyErr_Format(PyExc_ValueError,
                     "md5_file_parts: part_size must be positive and offset and count not "
                     "negative, not part_size=%zd, offset=%lld, count=%zd", part, offset, count);
        return NULL;
    }
    unsigned char *buf = PyMem_Malloc((size_t)LANES * FILE_CHUNK);
    unsigned char *out = PyMem_Malloc(16 * (size_t)count + 1);
    if (buf == NULL || out == NULL) {
        PyMem_Free(buf);
        PyMem_Free(out);
        return PyErr_NoMemory();
    }
    int status = 0, error = 0;
    Py_ssize_t first = 0;
    Py_BEGIN_ALLOW_THREADS
    for (; first < count; first += LANES) {
        int lanes = count - first < LANES ? (int)(count - first) : LANES;
        status = md5_file_group(fd, (off_t)offset + (off_t)first * (off_t)part, lanes,
                                (size_t)part, buf, out + 16 * first);
        if (status != 0) {
            error = errno;
            break;
        }
    }
    Py_END_ALLOW_THREADS
    PyMem_Free(buf);
    PyObject *result = NULL;
    if (status < 0) {
        errno = error;
        PyErr_SetFromErrno(PyExc_OSError);
    }
    else if (status > 0)
        PyErr_Format(PyExc_EOFError,
                     "md5_file_parts: the file ends within parts %zd to %zd (of %zd bytes, "
                     "the first at offset %lld)", first + 1,
                     first + LANES < count ? first + LANES : count, part, offset);
    else
        result = digest_list((const char *)out, count);
    PyMem_Free(out);
    return result;
}

static PyMethodDef methods[] = {
    {"md5_parts", md5_parts, METH_VARARGS, md5_parts_doc},
    {"md5_file_parts", md5_file_parts, METH_VARARGS, md5_file_parts_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_md5lanes",
    "md5 of many equal-sized parts at once, sixteen vector lanes.", -1, methods,
};

PyMODINIT_FUNC
PyInit__md5lanes(void)
{
    init_tables();
    PyObject *m = PyModule_Create(&module);
    if (m == NULL)
        return NULL;
    return m;
}
