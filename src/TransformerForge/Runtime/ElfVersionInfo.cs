using System.Buffers.Binary;
using System.Text;

namespace TransformerForge.Runtime;

/// <summary>
/// Reads the symbol-versioning sections of an ELF64 little-endian shared library: which versions it requires of which
/// libraries (<c>.gnu.version_r</c>), which versions it defines (<c>.gnu.version_d</c>), and which dynamic symbols are
/// bound to each required version. Just enough ELF to decide, and to make, the one safe patch in <see cref="GlibcxxPatch"/>.
/// </summary>
public sealed class ElfVersionInfo
{
    const uint ShtDynsym = 11, ShtGnuVerdef = 0x6ffffffd, ShtGnuVerneed = 0x6ffffffe, ShtGnuVersym = 0x6fffffff;
    public const ushort VerFlgWeak = 0x2;

    /// <summary>One <c>Vernaux</c> entry: a version <see cref="Name"/> required from library <see cref="File"/>.</summary>
    public sealed record Requirement(string File, string Name, ushort Flags, ushort Index, long FlagsOffset)
    {
        public bool IsWeak => (Flags & VerFlgWeak) != 0;
    }

    public string Path { get; }
    public IReadOnlyList<Requirement> Requirements { get; }
    public IReadOnlySet<string> DefinedVersions { get; }
    readonly Dictionary<ushort, List<string>> _symbolsByVersionIndex;

    ElfVersionInfo(string path, List<Requirement> reqs, HashSet<string> defs, Dictionary<ushort, List<string>> syms)
    {
        Path = path; Requirements = reqs; DefinedVersions = defs; _symbolsByVersionIndex = syms;
    }

    /// <summary>Undefined or defined dynamic symbols whose version index is <paramref name="index"/>.</summary>
    public IReadOnlyList<string> SymbolsWithVersion(ushort index) =>
        _symbolsByVersionIndex.TryGetValue(index, out var l) ? l : Array.Empty<string>();

    public static ElfVersionInfo Read(string path) => Parse(File.ReadAllBytes(path), path);

    public static ElfVersionInfo Parse(byte[] b, string path)
    {
        var s = b.AsSpan();
        Fail(b.Length < 64 || s[0] != 0x7f || s[1] != (byte)'E' || s[2] != (byte)'L' || s[3] != (byte)'F', path, "not an ELF file");
        Fail(s[4] != 2 || s[5] != 1, path, "only 64-bit little-endian ELF is supported");

        long shoff = (long)U64(s, 0x28);
        int shentsize = U16(s, 0x3A), shnum = U16(s, 0x3C);
        Fail(shentsize != 64 || shoff <= 0 || shoff + (long)shnum * 64 > b.Length, path, "bad section header table");

        var sections = new (uint Type, long Offset, long Size, uint Link, uint Info)[shnum];
        for (int i = 0; i < shnum; i++)
        {
            var h = s.Slice((int)(shoff + i * 64L), 64);
            sections[i] = (U32(h, 4), (long)U64(h, 0x18), (long)U64(h, 0x20), U32(h, 0x28), U32(h, 0x2C));
            Fail(sections[i].Type != 8 /* NOBITS */ && sections[i].Offset + sections[i].Size > b.Length, path, $"section {i} lies outside the file");
        }

        string Str(uint strtab, long off)
        {
            Fail(strtab >= sections.Length, path, "bad string table link");
            long start = sections[strtab].Offset + off;
            Fail(off < 0 || off >= sections[strtab].Size, path, "string offset out of range");
            int end = Array.IndexOf(b, (byte)0, (int)start);
            Fail(end < 0, path, "unterminated string");
            return Encoding.ASCII.GetString(b, (int)start, end - (int)start);
        }

        var reqs = new List<Requirement>();
        var defs = new HashSet<string>();
        var syms = new Dictionary<ushort, List<string>>();
        int dynsym = -1, versym = -1;

        for (int i = 0; i < sections.Length; i++)
        {
            var sec = sections[i];
            if (sec.Type == ShtGnuVerneed)
            {
                long off = sec.Offset;
                for (uint n = 0; n < sec.Info; n++)
                {
                    // Elf64_Verneed: vn_version u16, vn_cnt u16, vn_file u32, vn_aux u32, vn_next u32
                    int cnt = U16(s, off + 2);
                    string file = Str(sec.Link, U32(s, off + 4));
                    long aux = off + U32(s, off + 8);
                    for (int k = 0; k < cnt; k++)
                    {
                        // Elf64_Vernaux: vna_hash u32, vna_flags u16, vna_other u16, vna_name u32, vna_next u32
                        reqs.Add(new Requirement(file, Str(sec.Link, U32(s, aux + 8)), U16(s, aux + 4), U16(s, aux + 6), aux + 4));
                        uint next = U32(s, aux + 12);
                        if (next == 0) break;
                        aux += next;
                    }
                    uint vnNext = U32(s, off + 12);
                    if (vnNext == 0) break;
                    off += vnNext;
                }
            }
            else if (sec.Type == ShtGnuVerdef)
            {
                long off = sec.Offset;
                for (uint n = 0; n < sec.Info; n++)
                {
                    // Elf64_Verdef: vd_version u16, vd_flags u16, vd_ndx u16, vd_cnt u16, vd_hash u32, vd_aux u32, vd_next u32
                    long aux = off + U32(s, off + 12);
                    defs.Add(Str(sec.Link, U32(s, aux))); // first Verdaux names the version itself
                    uint next = U32(s, off + 16);
                    if (next == 0) break;
                    off += next;
                }
            }
            else if (sec.Type == ShtDynsym) dynsym = i;
            else if (sec.Type == ShtGnuVersym) versym = i;
        }

        if (dynsym >= 0 && versym >= 0)
        {
            var ds = sections[dynsym];
            long count = ds.Size / 24;
            Fail(sections[versym].Size < count * 2, path, ".gnu.version is shorter than .dynsym");
            for (long k = 1; k < count; k++)
            {
                ushort idx = (ushort)(U16(s, sections[versym].Offset + k * 2) & 0x7fff);
                if (idx <= 1) continue; // local / global: unversioned
                string name = Str(ds.Link, U32(s, ds.Offset + k * 24));
                if (!syms.TryGetValue(idx, out var list)) syms[idx] = list = new List<string>();
                list.Add(name);
            }
        }
        return new ElfVersionInfo(path, reqs, defs, syms);
    }

    static void Fail(bool bad, string path, string what)
    {
        if (bad) throw new InvalidDataException($"{path}: {what}");
    }

    static ushort U16(ReadOnlySpan<byte> s, long o) => BinaryPrimitives.ReadUInt16LittleEndian(s.Slice((int)o, 2));
    static uint U32(ReadOnlySpan<byte> s, long o) => BinaryPrimitives.ReadUInt32LittleEndian(s.Slice((int)o, 4));
    static ulong U64(ReadOnlySpan<byte> s, long o) => BinaryPrimitives.ReadUInt64LittleEndian(s.Slice((int)o, 8));
}
